package seed

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// answerer fills in a form the way OHTK's mobile app serialises it (Form.toJsonValue): every
// displayed field writes its raw value under its name and a rendering under "<name>__value";
// single choices add "<name>_text"; a named question nests its fields under data[name].
type answerer struct {
	r *rand.Rand
	// local is the reporter's wall-clock time when the report was written.
	local time.Time
	// lng and lat are where the reporter stood.
	lng, lat float64
	// force pins single-choice answers by field name, for the seeded outbreak.
	force map[string]string
	// images collects image ids in order, so the first can become the cover image.
	images []string
}

func (a *answerer) form(def *formDef, withTZ string) map[string]any {
	data := map[string]any{}
	for _, s := range def.Sections {
		for _, q := range s.Questions {
			target := data
			if q.Name != "" {
				target = map[string]any{}
				data[q.Name] = target
			}
			for _, f := range q.Fields {
				a.field(def, f, target)
			}
		}
	}
	if withTZ != "" {
		data["tz"] = withTZ
	}
	return data
}

func (a *answerer) unanswered(f *field) bool {
	return !f.Required && f.skip > 0 && a.r.Float64() < f.skip
}

func (a *answerer) pick(s []string) string { return s[a.r.IntN(len(s))] }

// choose returns the index of a single-choice answer, honouring the field's weights.
func (a *answerer) choose(f *field) int {
	if len(f.weights) != len(f.Options) {
		return a.r.IntN(len(f.Options))
	}
	total := 0
	for _, w := range f.weights {
		total += w
	}
	n := a.r.IntN(total)
	for i, w := range f.weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(f.Options) - 1
}

func (a *answerer) field(def *formDef, f *field, out map[string]any) {
	r := a.r
	name := f.Name
	skip := a.unanswered(f)
	switch f.Type {
	case "text", "textarea":
		if skip {
			out[name], out[name+"__value"] = nil, ""
			return
		}
		v := a.pick(f.samples)
		out[name], out[name+"__value"] = v, v
	case "integer":
		if skip {
			out[name], out[name+"__value"] = nil, ""
			return
		}
		v := int(f.lo) + r.IntN(int(f.hi-f.lo)+1)
		out[name], out[name+"__value"] = v, strconv.Itoa(v)
	case "decimal":
		if skip {
			out[name], out[name+"__value"] = nil, ""
			return
		}
		v := strconv.FormatFloat(f.lo+r.Float64()*(f.hi-f.lo), 'f', 2, 64)
		out[name], out[name+"__value"] = v, v
	case "date":
		if skip {
			out[name], out[name+"__value"] = nil, ""
			return
		}
		t := a.local.Add(-time.Duration(r.IntN(f.daysBack*24*60+1)) * time.Minute)
		if f.WithTime != nil && *f.WithTime {
			t = t.Truncate(time.Minute)
			out[name], out[name+"__value"] = t.Format("2006-01-02T15:04:05.000"), t.Format("2006-01-02 15:04")
		} else {
			d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
			out[name], out[name+"__value"] = d.Format("2006-01-02T15:04:05.000"), d.Format("2006-01-02")
		}
	case "location":
		v := coord(a.lng+(r.Float64()-0.5)*0.002) + "," + coord(a.lat+(r.Float64()-0.5)*0.002)
		out[name], out[name+"__value"] = v, v
	case "singlechoices":
		if skip {
			out[name], out[name+"_text"], out[name+"__value"] = nil, nil, ""
			return
		}
		o := f.Options[a.choose(f)]
		if v, ok := a.force[name]; ok {
			for _, fo := range f.Options {
				if fo.Value == v {
					o = fo
				}
			}
		}
		out[name], out[name+"_text"], out[name+"__value"] = o.Value, nil, o.Value
		if o.TextInput {
			text := a.pick(f.samples)
			out[name+"_text"], out[name+"__value"] = text, o.Value+" - "+text
		}
	case "multiplechoices":
		sel := map[string]any{}
		var values, rendered []string
		for _, o := range f.Options {
			on := !skip && r.Float64() < 0.3
			sel[o.Value] = on
			if o.TextInput {
				sel[o.Value+"_text"] = nil
			}
			if !on {
				continue
			}
			values = append(values, o.Value)
			if o.TextInput {
				text := a.pick(f.samples)
				sel[o.Value+"_text"] = text
				rendered = append(rendered, o.Value+" - "+text)
			} else {
				rendered = append(rendered, o.Value)
			}
		}
		if len(values) == 0 && f.Required {
			o := f.Options[r.IntN(len(f.Options)-1)] // never the free-text option here
			sel[o.Value] = true
			values, rendered = []string{o.Value}, []string{o.Value}
		}
		sel["value"] = strings.Join(values, ", ")
		out[name], out[name+"__value"] = sel, strings.Join(rendered, ", ")
	case "images":
		ids := []string{}
		if !skip {
			for range 1 + r.IntN(3) {
				ids = append(ids, newUUID(r))
			}
		}
		a.images = append(a.images, ids...)
		out[name], out[name+"__value"] = ids, strings.Join(ids, ", ")
	case "files":
		files := map[string]any{}
		var rendered []string
		if !skip {
			for _, i := range r.Perm(len(f.files))[:1+r.IntN(2)] {
				id := newUUID(r)
				files[f.files[i]] = id
				rendered = append(rendered, f.files[i]+" ("+id+")")
			}
		}
		out[name], out[name+"__value"] = files, strings.Join(rendered, ", ")
	case "subform":
		sub := def.subform(f.FormRef)
		inst := map[string]any{}
		var keys []string
		if !skip && sub != nil {
			for i := range 1 + r.IntN(3) {
				rec := a.form(sub, "")
				key := strings.Join(strings.Fields(rec[sub.Sections[0].Questions[0].Fields[0].Name].(string)), "")
				if _, dup := inst[key]; dup {
					key += strconv.Itoa(i + 1)
				}
				inst[key] = rec
				keys = append(keys, key)
			}
		}
		inst["value"] = strings.Join(keys, ", ")
		out[name], out[name+"__value"] = inst, inst["value"]
	}
}

// coord formats a degree value as the app does: plain decimal, no exponent.
func coord(v float64) string {
	return strconv.FormatFloat(float64(int64(v*1e6))/1e6, 'f', -1, 64)
}

// newUUID draws a version 4 UUID from r, so seeded data is reproducible.
func newUUID(r *rand.Rand) string {
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[c>>4], hexdigits[c&0x0f])
	}
	return string(out)
}

// render fills a renderer_data_template: {{path}} looks up data by dotted path; a path that
// is itself a field name containing a space is looked up whole first.
func render(tmpl string, data map[string]any) string {
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.Index(tmpl[i:], "}}")
		if j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		b.WriteString(lookup(data, tmpl[i+2:i+j]))
		tmpl = tmpl[i+j+2:]
	}
}

func lookup(data map[string]any, path string) string {
	var v any = data
	if x, ok := data[path]; ok {
		v = x
	} else {
		for _, p := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = m[p]
		}
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	default:
		return ""
	}
}
