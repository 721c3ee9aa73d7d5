package httpapi

// The types every package's huma handlers share. Inputs embed PageQuery or
// IDPath, or use them as they are; huma reads embedded structs of exported
// types only, which is why these are exported.

// Out is a handler's answer: its body.
type Out[T any] struct{ Body T }

// Reply turns a service call's result into a handler's answer: the value
// as the body, or the error as it is (the server maps it to a problem).
func Reply[T any](v T, err error) (*Out[T], error) {
	if err != nil {
		return nil, err
	}
	return &Out[T]{Body: v}, nil
}

// PageQuery is the query of a list: the page size and the opaque cursor
// of the page before (see package page).
type PageQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"200" doc:"Page size, default 50"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

// IDPath is the {id} of a resource's path.
type IDPath struct {
	ID string `path:"id" maxLength:"64"`
}
