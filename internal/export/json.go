package export

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// jsonWriter writes {"results":[{...},...],"next_cursor":...} or, with lines, one JSON
// object per line. Keys keep the column order.
type jsonWriter struct {
	w     io.Writer
	lines bool
	keys  [][]byte // `"name":` per column, encoded once
	buf   []byte
	n     int
}

func (j *jsonWriter) Header(columns []string) error {
	j.keys = make([][]byte, len(columns))
	for i, c := range columns {
		k := appendString(nil, c)
		j.keys[i] = append(k, ':')
	}
	if j.lines {
		return nil
	}
	_, err := io.WriteString(j.w, `{"results":[`)
	return err
}

func (j *jsonWriter) Row(vals []any) error {
	b := j.buf[:0]
	if !j.lines && j.n > 0 {
		b = append(b, ',')
	}
	b = append(b, '{')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, j.keys[i]...)
		b = AppendJSON(b, v)
	}
	b = append(b, '}')
	if j.lines {
		b = append(b, '\n')
	}
	j.buf = b
	j.n++
	_, err := j.w.Write(b)
	return err
}

func (j *jsonWriter) Close(t Trailer) error {
	if j.lines {
		return nil
	}
	b := append(j.buf[:0], `],"next_cursor":`...)
	if t.NextCursor == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, t.NextCursor)
	}
	b = append(b, "}\n"...)
	_, err := j.w.Write(b)
	return err
}

// AppendJSON appends the JSON encoding of v (one of the Row value types) to b.
func AppendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		if v == "" {
			return append(b, "null"...)
		}
		return append(b, v...)
	case json.RawMessage:
		if bytes.ContainsAny(v, "\r\n") {
			// Stored JSON may be pretty-printed; one row must stay on one line for NDJSON.
			n := len(b)
			buf := bytes.NewBuffer(b)
			if err := json.Compact(buf, v); err == nil {
				return buf.Bytes()
			}
			b = b[:n]
		}
		if len(v) == 0 || !json.Valid(v) {
			return appendString(b, string(v))
		}
		return append(b, v...)
	case []int64:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, x, 10)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, x)
		}
		return append(b, ']')
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, enc...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. UTF-8 text (Thai) is kept as is; invalid bytes
// become U+FFFD, and U+2028/U+2029 are escaped so the output is also valid JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
