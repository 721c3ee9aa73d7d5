package agent

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/causewayhq/causeway/internal/datashare"
)

// copyFile writes the file at path (CSV with a header line, or JSON Lines,
// by its extension) in format. The same format is copied byte for byte;
// the other is converted row by row using the dataset's columns.
func copyFile(ctx context.Context, w io.Writer, path, format string, cols []datashare.Column) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("file source: %w", errors.Unwrap(err))
	}
	defer f.Close()
	from := datashare.FormatOf(path)
	if from == format {
		_, err := io.Copy(w, &ctxReader{ctx: ctx, r: f})
		return err
	}
	rw, err := newRowWriter(ctx, w, format, cols)
	if err != nil {
		return err
	}
	if from == datashare.FormatCSV {
		err = convertCSV(f, cols, rw)
	} else {
		err = convertJSONL(f, cols, rw)
	}
	if err != nil {
		return err
	}
	return rw.flush()
}

// convertCSV writes the rows of the CSV file f, whose first line names its
// columns, to rw: cols' fields, in cols' order.
func convertCSV(f io.Reader, cols []datashare.Column, rw *rowWriter) error {
	fields := make([][]byte, len(cols))
	{
		cr := csv.NewReader(bufio.NewReaderSize(f, 256<<10))
		cr.ReuseRecord = true
		cr.FieldsPerRecord = -1
		header, err := cr.Read()
		if err != nil {
			return fmt.Errorf("file source: reading the header line: %w", err)
		}
		index := map[string]int{}
		for i, h := range header {
			index[strings.TrimSpace(h)] = i
		}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("file source: %w", err)
			}
			for i, c := range cols {
				fields[i] = nil
				if j, ok := index[c.Name]; ok && j < len(rec) {
					fields[i] = []byte(rec[j])
				}
			}
			if err := rw.row(fields); err != nil {
				return err
			}
		}
	}
	return nil
}

// convertJSONL writes the objects of the JSON Lines file f to rw: cols'
// members, in cols' order, a string member as its text.
func convertJSONL(f io.Reader, cols []datashare.Column, rw *rowWriter) error {
	fields := make([][]byte, len(cols))
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("file source: line %d is not a JSON object", line)
		}
		for i, c := range cols {
			fields[i] = nil
			v, ok := obj[c.Name]
			if !ok || string(v) == "null" {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) == nil {
				fields[i] = []byte(s)
			} else {
				fields[i] = v
			}
		}
		if err := rw.row(fields); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	return nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
