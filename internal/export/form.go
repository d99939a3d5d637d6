package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FieldKind is what a flat column reads from a form answer.
type FieldKind int

// The kinds of flat columns.
const (
	KindValue       FieldKind = iota // the field's value (text, textarea, singlechoices, unknown types)
	KindNumber                       // integer, decimal: a number, also when stored as a string
	KindText                         // singlechoices free text, data["<name>_text"]
	KindDate                         // a date; its time is kept when the field is withTime
	KindLng                          // longitude of a location "lng,lat"
	KindLat                          // latitude of a location "lng,lat"
	KindOption                       // multiplechoices: whether one option is chosen
	KindOptionText                   // multiplechoices: free text of one option
	KindChoiceValue                  // multiplechoices: the "value" summary ("a, b")
	KindList                         // images, files: ids or URLs joined with ","
	KindSubformKeys                  // subform: the instance keys ("k1, k2")
)

// Column is one flat column of a form.
type Column struct {
	// Name is the column's name: the field's name, prefixed by "<question>." when the
	// field belongs to a named question, and suffixed per kind (_lng, _lat, _text, .option).
	Name string `json:"name"`
	// FieldType is the form field's type ("text", "multiplechoices"...).
	FieldType string `json:"field_type"`
	// Label is the field's label (and the option's label for option columns).
	Label string `json:"label"`
	// Question is the named question holding the field, or "".
	Question string `json:"question,omitempty"`
	// Field is the field's name.
	Field string `json:"field"`
	// Option is the option value of a multiplechoices option column.
	Option string `json:"option,omitempty"`

	kind     FieldKind
	withTime bool
	formRef  string
}

// Kind returns what the column reads.
func (c Column) Kind() FieldKind { return c.kind }

// Type returns the column's type in typed formats: numbers and coordinates are Float,
// option columns Bool, dates Date (LocalTime when the field keeps the time), the rest
// Text. Integer fields are Float too: the app stores what was typed, "3.0" included.
func (c Column) Type() Type {
	switch c.kind {
	case KindNumber, KindLng, KindLat:
		return Float
	case KindOption:
		return Bool
	case KindDate:
		if c.withTime {
			return LocalTime
		}
		return Date
	}
	return Text
}

// Types lists the types of f's columns.
func (f *Form) Types() []Type {
	out := make([]Type, len(f.Columns))
	for i, c := range f.Columns {
		out[i] = c.Type()
	}
	return out
}

// Form is a parsed form definition: its flat columns and its subforms.
type Form struct {
	Columns []Column
	// subforms maps a subform field's column name to its form.
	subforms map[string]*Form
}

// Subform returns the form of the subform field whose column is name.
func (f *Form) Subform(name string) (*Form, bool) {
	s, ok := f.subforms[name]
	return s, ok
}

// SubformNames lists the subform columns of f in form order.
func (f *Form) SubformNames() []string {
	var out []string
	for _, c := range f.Columns {
		if c.kind == KindSubformKeys {
			out = append(out, c.Name)
		}
	}
	return out
}

type rawDefinition struct {
	Sections []struct {
		Label     string `json:"label"`
		Questions []struct {
			Label  string     `json:"label"`
			Name   string     `json:"name"`
			Fields []rawField `json:"fields"`
		} `json:"questions"`
	} `json:"sections"`
	Subforms json.RawMessage `json:"subforms"`
}

type rawField struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Label    string `json:"label"`
	Type     string `json:"type"`
	WithTime bool   `json:"withTime"`
	FormRef  string `json:"formRef"`
	Options  []struct {
		Label     string `json:"label"`
		Value     string `json:"value"`
		TextInput bool   `json:"textInput"`
	} `json:"options"`
}

// ParseForm parses an OHTK form definition (sections[].questions[].fields[], subforms).
func ParseForm(definition []byte) (*Form, error) {
	return parseForm(definition, 0, nil)
}

// parseForm parses one definition. inherited are the subform definitions of the enclosing
// forms: OHTK's app resolves a nested subform's formRef in the top-level list.
func parseForm(definition []byte, depth int, inherited map[string]json.RawMessage) (*Form, error) {
	if depth > 4 {
		return nil, fmt.Errorf("export: form definition: subforms nested too deeply")
	}
	var d rawDefinition
	if err := json.Unmarshal(definition, &d); err != nil {
		return nil, fmt.Errorf("export: form definition: %w", err)
	}
	own, err := subformDefinitions(d.Subforms)
	if err != nil {
		return nil, err
	}
	subDefs := make(map[string]json.RawMessage, len(inherited)+len(own))
	for k, v := range inherited {
		subDefs[k] = v
	}
	for k, v := range own {
		subDefs[k] = v
	}
	f := &Form{subforms: map[string]*Form{}}
	seen := map[string]bool{}
	add := func(c Column) {
		if seen[c.Name] {
			return
		}
		seen[c.Name] = true
		f.Columns = append(f.Columns, c)
	}
	for _, s := range d.Sections {
		for _, q := range s.Questions {
			prefix := ""
			if q.Name != "" {
				prefix = q.Name + "."
			}
			for _, fd := range q.Fields {
				name := fd.Name
				if name == "" {
					name = fd.ID
				}
				if name == "" {
					continue
				}
				base := Column{Name: prefix + name, FieldType: fd.Type, Label: fd.Label, Question: q.Name, Field: name}
				switch fd.Type {
				case "date":
					c := base
					c.kind, c.withTime = KindDate, fd.WithTime
					add(c)
				case "location":
					lng, lat := base, base
					lng.Name, lng.kind = base.Name+"_lng", KindLng
					lat.Name, lat.kind = base.Name+"_lat", KindLat
					add(lng)
					add(lat)
				case "singlechoices":
					v, t := base, base
					v.kind = KindValue
					t.Name, t.kind = base.Name+"_text", KindText
					add(v)
					add(t)
				case "multiplechoices":
					v := base
					v.kind = KindChoiceValue
					add(v)
					for _, o := range fd.Options {
						c := base
						c.Name, c.kind, c.Option, c.Label = base.Name+"."+o.Value, KindOption, o.Value, o.Label
						add(c)
						if o.TextInput {
							t := c
							t.Name, t.kind = c.Name+"_text", KindOptionText
							add(t)
						}
					}
				case "integer", "decimal":
					c := base
					c.kind = KindNumber
					add(c)
				case "images", "files":
					c := base
					c.kind = KindList
					add(c)
				case "subform":
					c := base
					c.kind, c.formRef = KindSubformKeys, fd.FormRef
					add(c)
					ref := fd.FormRef
					if ref == "" {
						ref = name
					}
					if raw, ok := subDefs[ref]; ok {
						sf, err := parseForm(raw, depth+1, subDefs)
						if err != nil {
							return nil, err
						}
						f.subforms[c.Name] = sf
					} else {
						f.subforms[c.Name] = &Form{subforms: map[string]*Form{}}
					}
				default:
					c := base
					c.kind = KindValue
					add(c)
				}
			}
		}
	}
	return f, nil
}

// subformDefinitions reads "subforms": an object keyed by formRef, or a list whose items are
// either one-entry objects {formRef: definition} (what OHTK's form builder writes) or
// definitions carrying their own "name".
func subformDefinitions(raw json.RawMessage) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return out, nil
	}
	if raw[0] != '[' {
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("export: form definition subforms: %w", err)
		}
		return out, nil
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("export: form definition subforms: %w", err)
	}
	for _, item := range list {
		if _, isDef := item["sections"]; isDef {
			var name string
			if json.Unmarshal(item["name"], &name) == nil && name != "" {
				whole, _ := json.Marshal(item)
				out[name] = whole
			}
			continue
		}
		for ref, def := range item {
			out[ref] = def
		}
	}
	return out, nil
}

// Merge adds to f the columns (and subforms) of other that f lacks, after f's own. It lays
// out one header for reports whose definition snapshots differ.
func (f *Form) Merge(other *Form) {
	have := make(map[string]bool, len(f.Columns))
	for _, c := range f.Columns {
		have[c.Name] = true
	}
	for _, c := range other.Columns {
		if !have[c.Name] {
			have[c.Name] = true
			f.Columns = append(f.Columns, c)
		}
	}
	for name, sf := range other.subforms {
		if mine, ok := f.subforms[name]; ok {
			mine.Merge(sf)
		} else {
			if f.subforms == nil {
				f.subforms = map[string]*Form{}
			}
			f.subforms[name] = sf
		}
	}
}

// DecodeData decodes a report's data (JSON object) keeping numbers exact.
func DecodeData(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// AppendValues appends the value of each of f's columns in data to dst. loc is the
// reporter's time zone (data["tz"]), used to give the date of a date field as the reporter
// saw it; nil keeps dates as stored.
func (f *Form) AppendValues(dst []any, data map[string]any, loc *time.Location) []any {
	for i := range f.Columns {
		dst = append(dst, f.Columns[i].value(data, loc))
	}
	return dst
}

func (c *Column) value(data map[string]any, loc *time.Location) any {
	scope := data
	if c.Question != "" {
		m, ok := data[c.Question].(map[string]any)
		if !ok {
			return nil
		}
		scope = m
	}
	v := scope[c.Field]
	switch c.kind {
	case KindValue:
		return scalar(v)
	case KindNumber:
		if str, ok := v.(string); ok {
			return number(str)
		}
		return scalar(v)
	case KindText:
		return scalar(scope[c.Field+"_text"])
	case KindDate:
		return dateValue(v, c.withTime, loc)
	case KindLng, KindLat:
		s, ok := v.(string)
		if !ok {
			return nil
		}
		lng, lat, ok := strings.Cut(s, ",")
		if !ok {
			return nil
		}
		if c.kind == KindLng {
			return number(lng)
		}
		return number(lat)
	case KindOption:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		b, _ := m[c.Option].(bool)
		return b
	case KindOptionText:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		return scalar(m[c.Option+"_text"])
	case KindChoiceValue:
		m, ok := v.(map[string]any)
		if !ok {
			return scalar(v)
		}
		return scalar(m["value"])
	case KindList:
		return listValue(v)
	case KindSubformKeys:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if s, ok := m["value"].(string); ok {
			return s
		}
		return strings.Join(SubformKeys(m), ", ")
	}
	return nil
}

// SubformKeys returns the instance keys of a subform answer in the order of its "value"
// list, then any others sorted.
func SubformKeys(m map[string]any) []string {
	var keys []string
	seen := map[string]bool{}
	if s, ok := m["value"].(string); ok {
		for k := range strings.SplitSeq(s, ",") {
			k = strings.TrimSpace(k)
			if _, ok := m[k].(map[string]any); ok && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	var rest []string
	for k, v := range m {
		if _, ok := v.(map[string]any); ok && !seen[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

func number(s string) any {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if !json.Valid([]byte(s)) {
		return s
	}
	return json.Number(s)
}

// scalar returns v as a row value: strings, numbers and booleans as they are, anything
// else as its JSON text.
func scalar(v any) any {
	switch v := v.(type) {
	case nil, string, bool, json.Number:
		return v
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return string(enc)
}

// Layouts of dates stored without an offset: the app writes the reporter's wall-clock time.
var localLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02 15:04"}

func dateValue(v any, withTime bool, loc *time.Location) any {
	s, ok := v.(string)
	if !ok {
		return scalar(v)
	}
	if len(s) == len(time.DateOnly) {
		return s
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if loc != nil {
			// Converted, never replaced: the instant stays the same.
			t = t.In(loc)
		}
		if withTime {
			return t.Format(time.RFC3339Nano)
		}
		return t.Format(time.DateOnly)
	}
	for _, layout := range localLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if !withTime {
			return t.Format(time.DateOnly)
		}
		if loc == nil {
			return s // a wall-clock time whose zone is unknown stays as stored
		}
		t, _ = time.ParseInLocation(layout, s, loc)
		return t.Format(time.RFC3339Nano)
	}
	return s
}

// listValue joins the ids or URLs of an images or files answer: a list of ids or of
// objects, or (files) an object of file name to id, taken in file name order.
func listValue(v any) any {
	if m, ok := v.(map[string]any); ok {
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		slices.Sort(names)
		list := make([]any, 0, len(m))
		for _, k := range names {
			list = append(list, m[k])
		}
		v = list
	}
	list, ok := v.([]any)
	if !ok {
		return scalar(v)
	}
	parts := make([]string, 0, len(list))
	for _, item := range list {
		switch item := item.(type) {
		case string:
			parts = append(parts, item)
		case json.Number:
			parts = append(parts, string(item))
		case map[string]any:
			for _, k := range []string{"url", "file", "image", "id"} {
				if s, ok := item[k].(string); ok && s != "" {
					parts = append(parts, s)
					break
				}
			}
		}
	}
	return strings.Join(parts, ",")
}

// Zones caches time zones by IANA name; time.LoadLocation reads a file on every call.
type Zones map[string]*time.Location

// Of returns the reporter's time zone named by data["tz"], or nil when it is missing or
// unknown.
func (z Zones) Of(data map[string]any) *time.Location {
	name, ok := data["tz"].(string)
	if !ok || name == "" || name == "Local" {
		return nil
	}
	if loc, ok := z[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if len(z) < 1000 {
		z[name] = loc
	}
	return loc
}

// SubformAnswer returns the answer of the subform field whose column is name: a map of
// instance key to that instance's answers (plus "value").
func (f *Form) SubformAnswer(name string, data map[string]any) (map[string]any, bool) {
	for i := range f.Columns {
		c := &f.Columns[i]
		if c.kind != KindSubformKeys || c.Name != name {
			continue
		}
		scope := data
		if c.Question != "" {
			m, ok := data[c.Question].(map[string]any)
			if !ok {
				return nil, false
			}
			scope = m
		}
		m, ok := scope[c.Field].(map[string]any)
		return m, ok
	}
	return nil, false
}
