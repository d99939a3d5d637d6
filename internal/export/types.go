package export

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Conversions of row values to the column types of the typed formats. Each reports
// whether the value fits; a value that does not is written as text in xlsx and as null in
// Parquet.

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case json.Number:
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v), true
		}
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(v), 64); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func asBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	}
	return false, false
}

// Layouts of instants: RFC 3339 and PostgreSQL's text form of timestamptz.
var instantLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07"}

// asTime reads a Timestamp (local false: the instant, in UTC) or a LocalTime (local true:
// the wall clock, labelled UTC).
func asTime(v any, local bool) (time.Time, bool) {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case string:
		ok := false
		for _, layout := range instantLayouts {
			if p, err := time.Parse(layout, v); err == nil {
				t, ok = p, true
				break
			}
		}
		if !ok {
			// Without a zone: a wall-clock time, taken as UTC for instants.
			for _, layout := range localLayouts {
				if p, err := time.Parse(layout, v); err == nil {
					return p, true
				}
			}
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	if local {
		y, m, d := t.Date()
		h, mi, s := t.Clock()
		return time.Date(y, m, d, h, mi, s, t.Nanosecond(), time.UTC), true
	}
	return t.UTC(), true
}

// asDate reads a Date as midnight UTC of that day.
func asDate(v any) (time.Time, bool) {
	if s, ok := v.(string); ok && len(s) == len(time.DateOnly) {
		t, err := time.Parse(time.DateOnly, s)
		return t, err == nil
	}
	t, ok := asTime(v, true)
	if !ok {
		return time.Time{}, false
	}
	return t.Truncate(24 * time.Hour), true
}
