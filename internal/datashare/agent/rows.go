package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strconv"

	"github.com/causewayhq/causeway/internal/datashare"
)

// rowWriter encodes rows as CSV (RFC 4180, header line, LF line ends) or
// JSON Lines (one object per row, keys in column order). Fields arrive as
// text; in JSON, integer, number and boolean columns are written as JSON
// literals when the text is one, everything else as strings. It checks
// ctx every few thousand rows, so a cancelled job stops promptly.
type rowWriter struct {
	ctx    context.Context
	w      *bufio.Writer
	format string
	cols   []datashare.Column
	keys   [][]byte // JSON: `"name":` per column, with the leading { or ,
	rows   int64
}

func newRowWriter(ctx context.Context, w io.Writer, format string, cols []datashare.Column) (*rowWriter, error) {
	rw := &rowWriter{ctx: ctx, w: bufio.NewWriterSize(w, 128<<10), format: format, cols: cols}
	if format == datashare.FormatJSONL {
		for i, c := range cols {
			k, _ := json.Marshal(c.Name)
			sep := byte(',')
			if i == 0 {
				sep = '{'
			}
			rw.keys = append(rw.keys, append(append([]byte{sep}, k...), ':'))
		}
		return rw, nil
	}
	for i, c := range cols {
		if i > 0 {
			rw.w.WriteByte(',')
		}
		writeCSVField(rw.w, []byte(c.Name))
	}
	rw.w.WriteByte('\n')
	return rw, nil
}

// row writes one row; fields are in column order (missing trailing fields
// are empty).
func (rw *rowWriter) row(fields [][]byte) error {
	rw.rows++
	if rw.rows&4095 == 0 {
		if err := rw.ctx.Err(); err != nil {
			return err
		}
	}
	w := rw.w
	if rw.format == datashare.FormatJSONL {
		for i, c := range rw.cols {
			w.Write(rw.keys[i])
			var f []byte
			if i < len(fields) {
				f = fields[i]
			}
			writeJSONValue(w, c.Type, f)
		}
		if len(rw.cols) == 0 {
			w.WriteByte('{')
		}
		w.WriteString("}\n")
		return nil
	}
	for i := range rw.cols {
		if i > 0 {
			w.WriteByte(',')
		}
		if i < len(fields) {
			writeCSVField(w, fields[i])
		}
	}
	_, err := w.Write([]byte{'\n'})
	return err
}

func (rw *rowWriter) flush() error { return rw.w.Flush() }

func writeCSVField(w *bufio.Writer, f []byte) {
	quote := len(f) > 0 && (f[0] == ' ' || f[0] == '\t')
	for _, b := range f {
		if b == ',' || b == '"' || b == '\n' || b == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		w.Write(f)
		return
	}
	w.WriteByte('"')
	for _, b := range f {
		if b == '"' {
			w.WriteByte('"')
		}
		w.WriteByte(b)
	}
	w.WriteByte('"')
}

func writeJSONValue(w *bufio.Writer, typ string, f []byte) {
	switch typ {
	case "integer":
		if _, err := strconv.ParseInt(string(f), 10, 64); err == nil {
			w.Write(f)
			return
		}
	case "number":
		if isJSONNumber(f) {
			w.Write(f)
			return
		}
	case "boolean":
		if s := string(f); s == "true" || s == "false" {
			w.Write(f)
			return
		}
	}
	if len(f) == 0 && typ != "string" {
		w.WriteString("null")
		return
	}
	writeJSONString(w, f)
}

func writeJSONString(w *bufio.Writer, f []byte) {
	for _, b := range f {
		if b < 0x20 || b >= 0x80 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
			j, _ := json.Marshal(string(f))
			w.Write(j)
			return
		}
	}
	w.WriteByte('"')
	w.Write(f)
	w.WriteByte('"')
}

// isJSONNumber reports whether f is a JSON number literal:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(f []byte) bool {
	i := 0
	if i < len(f) && f[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && f[start] == '0') {
		return false
	}
	if i < len(f) && f[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(f) && (f[i] == 'e' || f[i] == 'E') {
		i++
		if i < len(f) && (f[i] == '+' || f[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(f)
}
