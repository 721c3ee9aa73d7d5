package httpapi

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// The document types every array as an array, never ["array","null"]
// (see init), so that generated clients get []Account rather than
// *[]Account. Go writes a nil slice as null, so fillNilSlices keeps the
// promise for every response body huma writes: a handler may return a nil
// slice, and the client still reads [].

// fillNilSlices is a huma Transformer: it returns v with every nil slice
// that JSON would write as null (a field without omitempty or omitzero, an
// element, a map value, at any depth) replaced by an empty one. v itself is
// never modified: what holds a nil slice is copied, so values a handler
// shares (a cached catalog) are safe.
func fillNilSlices(_ huma.Context, _ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if filled, changed := fill(reflect.ValueOf(v)); changed {
		return filled.Interface(), nil
	}
	return v, nil
}

// fill returns v with its nil slices filled, and whether it had any.
func fill(v reflect.Value) (reflect.Value, bool) {
	if !mayHoldNilSlice(v.Type()) {
		return v, false
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return v, false
		}
		elem, changed := fill(v.Elem())
		if !changed {
			return v, false
		}
		if v.Kind() == reflect.Interface {
			out := reflect.New(v.Type()).Elem()
			out.Set(elem)
			return out, true
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(elem)
		return out, true
	case reflect.Struct:
		var out reflect.Value
		for i, f := range structFields(v.Type()) {
			if !f.encoded {
				continue
			}
			field := v.Field(i)
			if field.Kind() == reflect.Slice && field.IsNil() && f.omitted {
				continue // left out, not null
			}
			filled, changed := fill(field)
			if changed {
				if !out.IsValid() {
					out = reflect.New(v.Type()).Elem()
					out.Set(v)
				}
				out.Field(i).Set(filled)
			}
		}
		if out.IsValid() {
			return out, true
		}
		return v, false
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return reflect.MakeSlice(v.Type(), 0, 0), true
		}
		if !mayHoldNilSlice(v.Type().Elem()) {
			return v, false
		}
		var out reflect.Value
		for i := range v.Len() {
			filled, changed := fill(v.Index(i))
			if !changed {
				continue
			}
			if !out.IsValid() {
				if v.Kind() == reflect.Slice {
					out = reflect.MakeSlice(v.Type(), v.Len(), v.Len())
				} else {
					out = reflect.New(v.Type()).Elem()
				}
				reflect.Copy(out, v)
			}
			out.Index(i).Set(filled)
		}
		if out.IsValid() {
			return out, true
		}
		return v, false
	case reflect.Map:
		if v.IsNil() {
			return v, false
		}
		var out reflect.Value
		for it := v.MapRange(); it.Next(); {
			filled, changed := fill(it.Value())
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.MakeMapWithSize(v.Type(), v.Len())
				for c := v.MapRange(); c.Next(); {
					out.SetMapIndex(c.Key(), c.Value())
				}
			}
			out.SetMapIndex(it.Key(), filled)
		}
		if out.IsValid() {
			return out, true
		}
		return v, false
	}
	return v, false
}

// fieldInfo is how encoding/json treats one struct field.
type fieldInfo struct {
	encoded bool // exported (or an embedded struct) and not json:"-"
	omitted bool // omitempty or omitzero: a nil slice is left out, not null
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func structFields(t reflect.Type) []fieldInfo {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]fieldInfo)
	}
	fs := make([]fieldInfo, t.NumField())
	for i := range fs {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		// Fields of an unexported embedded struct are encoded, but reflect
		// cannot set them; they are left as they are.
		fs[i].encoded = f.IsExported() && name != "-"
		fs[i].omitted = strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
	}
	fieldCache.Store(t, fs)
	return fs
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// marshals reports whether values of t write themselves, so their inside
// is theirs to decide (json.RawMessage, time.Time).
func marshals(t reflect.Type) bool {
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler)
}

var holdsCache sync.Map // reflect.Type -> bool

// mayHoldNilSlice reports whether a value of t can hold a slice that JSON
// writes as null, so that fill walks only values that can. An interface
// may hold anything.
func mayHoldNilSlice(t reflect.Type) bool {
	if h, ok := holdsCache.Load(t); ok {
		return h.(bool)
	}
	h := holds(t, map[reflect.Type]bool{})
	holdsCache.Store(t, h)
	return h
}

// holds decides mayHoldNilSlice. A recursive type meets itself while it is
// being decided; there it adds nothing, and the rest of its fields decide.
func holds(t reflect.Type, visiting map[reflect.Type]bool) bool {
	if h, ok := holdsCache.Load(t); ok {
		return h.(bool)
	}
	if visiting[t] || marshals(t) {
		return false
	}
	visiting[t] = true
	switch t.Kind() {
	case reflect.Interface, reflect.Slice:
		return true
	case reflect.Pointer, reflect.Array, reflect.Map:
		return holds(t.Elem(), visiting)
	case reflect.Struct:
		for i, f := range structFields(t) {
			if f.encoded && holds(t.Field(i).Type, visiting) {
				return true
			}
		}
	}
	return false
}
