package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	typeErrorPattern    = regexp.MustCompile("^line ([0-9]+): cannot unmarshal !!([a-z]+)(?: `(.*)`)? into (.+)$")
	unknownFieldPattern = regexp.MustCompile(`^line ([0-9]+): field (\S+) not found in type \S+$`)
)

// kinds names what a Go type of the configuration takes, for error messages.
var kinds = map[string]string{
	"time.Duration": "a duration (such as 90s, 10m or 336h)",
	"bool":          "true or false",
	"int":           "a whole number",
	"int64":         "a whole number",
	"float64":       "a number",
	"string":        "a string",
	"[]string":      "a list of strings",
}

// DecodeYAML decodes body, the contents of file, into v, which may hold defaults already.
// Unknown fields are errors. Every error is one line naming file, the field with its line and
// the problem, and wraps ErrInvalid; a file that is empty or holds only comments is an error.
// The hub's and the api's configuration files are read with it.
func DecodeYAML(file string, body []byte, v any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(body, &root); err != nil {
		return yamlError(file, &root, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return fmt.Errorf("%s: %w: the file is empty (or holds only comments)", file, ErrInvalid)
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return yamlError(file, &root, err)
	}
	return nil
}

// yamlError turns a decoding error of file into one line naming the field, its line and the
// problem. root is the file's parsed node tree, used to find the field at the line yaml names.
func yamlError(file string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return fmt.Errorf("%s: %w: %s", file, ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// The first problem is enough to fix; the others usually follow from it.
	msg := te.Errors[0]
	if m := unknownFieldPattern.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		field := m[2]
		if p, ok := findKey(root, line, m[2]); ok {
			field = p
		}
		return fmt.Errorf("%s: %s (line %d): %w: unknown field", file, field, line, ErrInvalid)
	}
	if m := typeErrorPattern.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		want, ok := kinds[m[4]]
		if !ok {
			switch {
			case strings.HasPrefix(m[4], "[]"):
				want = "a list"
			case strings.HasPrefix(m[4], "map["), strings.Contains(m[4], "."):
				// A struct of the configuration (config.Spawner, api.ProviderConfig).
				want = "a mapping"
			default:
				want = m[4]
			}
		}
		got := map[string]string{"seq": "a list", "map": "a mapping"}[m[2]]
		if m[3] != "" {
			got = strconv.Quote(m[3])
		}
		if got == "" {
			got = "the value"
		}
		field := "?"
		if p, ok := findValue(root, line); ok {
			field = p
		}
		return fmt.Errorf("%s: %s (line %d): %w: %s is not %s", file, field, line, ErrInvalid, got, want)
	}
	return fmt.Errorf("%s: %w: %s", file, ErrInvalid, msg)
}

// findValue returns the path (session_max_age, tenants[0].pkce) of the first value on line.
func findValue(root *yaml.Node, line int) (string, bool) {
	return find(root, "", func(k, v *yaml.Node) bool {
		if k == nil {
			return v.Line == line && v.Kind == yaml.ScalarNode
		}
		// A block mapping starts on the line of its first key: that key, not the mapping, is
		// the field on its line.
		return k.Line == line || (v.Line == line && v.Kind != yaml.MappingNode)
	})
}

// findKey returns the path of the mapping key name on line.
func findKey(root *yaml.Node, line int, name string) (string, bool) {
	return find(root, "", func(k, _ *yaml.Node) bool { return k != nil && k.Line == line && k.Value == name })
}

// find walks n depth first and returns the path of the first mapping entry (k, v) or sequence
// item (nil, v) that match accepts.
func find(n *yaml.Node, path string, match func(k, v *yaml.Node) bool) (string, bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p, ok := find(c, path, match); ok {
				return p, true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if match(k, v) {
				return p, true
			}
			if q, ok := find(v, p, match); ok {
				return q, true
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if match(nil, v) {
				return p, true
			}
			if q, ok := find(v, p, match); ok {
				return q, true
			}
		}
	}
	return "", false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
