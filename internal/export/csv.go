package export

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
)

// csvWriter writes RFC 4180 CSV in UTF-8. Values that are lists are joined with ",";
// JSON documents are written as their JSON text; nil is an empty field.
type csvWriter struct {
	w      io.Writer
	bom    bool
	c      *csv.Writer
	fields []string
	texter
}

func newCSVWriter(w io.Writer, bom bool) *csvWriter {
	return &csvWriter{w: w, bom: bom, c: csv.NewWriter(w)}
}

func (c *csvWriter) Header(columns []string) error {
	if c.bom {
		if _, err := io.WriteString(c.w, "\ufeff"); err != nil {
			return err
		}
	}
	c.fields = make([]string, len(columns))
	return c.c.Write(columns)
}

func (c *csvWriter) Row(vals []any) error {
	for i, v := range vals {
		c.fields[i] = c.text(v)
	}
	err := c.c.Write(c.fields)
	clear(c.fields)
	return err
}

func (c *csvWriter) Close(Trailer) error {
	c.c.Flush()
	return c.c.Error()
}

// texter renders values as CSV field text; other formats use it for values they hold as
// text.
type texter struct{ sb strings.Builder }

// text renders one value as CSV field text.
func (c *texter) text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return string(v)
	case json.RawMessage:
		return string(v)
	case []int64:
		c.sb.Reset()
		for i, x := range v {
			if i > 0 {
				c.sb.WriteByte(',')
			}
			c.sb.WriteString(strconv.FormatInt(x, 10))
		}
		return c.sb.String()
	case []string:
		return strings.Join(v, ",")
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(enc)
}
