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
//
// It runs on every answer, so the walk is planned once per type (fillerOf):
// a type that cannot hold a nil slice is not walked at all, and a struct's
// walk visits only the fields that can.
func fillNilSlices(_ huma.Context, _ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	f := fillerOf(reflect.TypeOf(v))
	if f == nil {
		return v, nil
	}
	if filled, changed := f(reflect.ValueOf(v)); changed {
		return filled.Interface(), nil
	}
	return v, nil
}

// A filler returns v, a value of the type it was built for, with its nil
// slices filled, and whether it had any. A nil filler stands for a type
// whose values never hold a slice JSON writes as null.
type filler func(v reflect.Value) (reflect.Value, bool)

var fillers sync.Map // reflect.Type -> filler

// fillerOf returns the filler of t, building it on first use.
func fillerOf(t reflect.Type) filler {
	if f, ok := fillers.Load(t); ok {
		return f.(filler)
	}
	building := map[reflect.Type]*filler{}
	f := build(t, building)
	// Every filler built on the way is complete now; none is published
	// before, since a recursive type's filler calls itself through the
	// pointer it is assigned to.
	for bt, bf := range building {
		fillers.LoadOrStore(bt, *bf)
	}
	fillers.LoadOrStore(t, f) // also a nil one: t holds no nil slice
	return f
}

// build returns the filler of t, or nil when values of t cannot hold a
// nil slice. building holds the fillers under construction, so a
// recursive type refers to its own.
func build(t reflect.Type, building map[reflect.Type]*filler) filler {
	if f, ok := fillers.Load(t); ok {
		return f.(filler)
	}
	if !mayHoldNilSlice(t) {
		return nil
	}
	if f, ok := building[t]; ok {
		return func(v reflect.Value) (reflect.Value, bool) { return (*f)(v) }
	}
	f := new(filler)
	building[t] = f
	switch t.Kind() {
	case reflect.Interface:
		*f = fillInterface
	case reflect.Pointer:
		*f = fillPointer(build(t.Elem(), building))
	case reflect.Struct:
		*f = fillStruct(t, building)
	case reflect.Slice, reflect.Array:
		*f = fillList(t, build(t.Elem(), building))
	case reflect.Map:
		*f = fillMap(t, build(t.Elem(), building))
	}
	return *f
}

// fillInterface fills what an interface holds, by the filler of its
// dynamic type.
func fillInterface(v reflect.Value) (reflect.Value, bool) {
	if v.IsNil() {
		return v, false
	}
	f := fillerOf(v.Elem().Type())
	if f == nil {
		return v, false
	}
	elem, changed := f(v.Elem())
	if !changed {
		return v, false
	}
	out := reflect.New(v.Type()).Elem()
	out.Set(elem)
	return out, true
}

func fillPointer(elem filler) filler {
	return func(v reflect.Value) (reflect.Value, bool) {
		if v.IsNil() {
			return v, false
		}
		filled, changed := elem(v.Elem())
		if !changed {
			return v, false
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(filled)
		return out, true
	}
}

// fieldFiller fills one struct field that can hold a nil slice.
type fieldFiller struct {
	index   int
	fill    filler
	omitNil bool // a nil slice here is left out (omitempty, omitzero), not null
}

func fillStruct(t reflect.Type, building map[reflect.Type]*filler) filler {
	var fields []fieldFiller
	for i, info := range structFields(t) {
		if !info.encoded {
			continue
		}
		ft := t.Field(i).Type
		if fill := build(ft, building); fill != nil {
			fields = append(fields, fieldFiller{index: i, fill: fill, omitNil: ft.Kind() == reflect.Slice && info.omitted})
		}
	}
	return func(v reflect.Value) (reflect.Value, bool) {
		var out reflect.Value
		for _, f := range fields {
			field := v.Field(f.index)
			if f.omitNil && field.IsNil() {
				continue // left out, not null
			}
			filled, changed := f.fill(field)
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.New(t).Elem()
				out.Set(v)
			}
			out.Field(f.index).Set(filled)
		}
		if out.IsValid() {
			return out, true
		}
		return v, false
	}
}

// fillList fills a slice or an array: a nil slice becomes an empty one,
// and each element is filled by elem (nil: the elements hold none).
func fillList(t reflect.Type, elem filler) filler {
	isSlice := t.Kind() == reflect.Slice
	return func(v reflect.Value) (reflect.Value, bool) {
		if isSlice && v.IsNil() {
			return reflect.MakeSlice(t, 0, 0), true
		}
		if elem == nil {
			return v, false
		}
		var out reflect.Value
		for i := range v.Len() {
			filled, changed := elem(v.Index(i))
			if !changed {
				continue
			}
			if !out.IsValid() {
				if isSlice {
					out = reflect.MakeSlice(t, v.Len(), v.Len())
				} else {
					out = reflect.New(t).Elem()
				}
				reflect.Copy(out, v)
			}
			out.Index(i).Set(filled)
		}
		if out.IsValid() {
			return out, true
		}
		return v, false
	}
}

func fillMap(t reflect.Type, elem filler) filler {
	return func(v reflect.Value) (reflect.Value, bool) {
		if v.IsNil() {
			return v, false
		}
		var out reflect.Value
		for it := v.MapRange(); it.Next(); {
			filled, changed := elem(it.Value())
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.MakeMapWithSize(t, v.Len())
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
}

// fieldInfo is how encoding/json treats one struct field.
type fieldInfo struct {
	encoded bool // exported (or an embedded struct) and not json:"-"
	omitted bool // omitempty or omitzero: a nil slice is left out, not null
}

// structFields describes t's fields; it runs only while fillers are built.
func structFields(t reflect.Type) []fieldInfo {
	fs := make([]fieldInfo, t.NumField())
	for i := range fs {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		// Fields of an unexported embedded struct are encoded, but reflect
		// cannot set them; they are left as they are.
		fs[i].encoded = f.IsExported() && name != "-"
		fs[i].omitted = strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
	}
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
// writes as null, so that only such types get a filler. An interface
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
