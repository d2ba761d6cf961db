package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds the configuration file: a config is a few kilobytes,
// and YAML parsing of a huge file would cost memory for nothing.
const MaxFileSize = 1 << 20

// Problem is one thing wrong with a configuration: where it came from (a
// line of the file, or an environment variable), the key path and what is
// wrong.
type Problem struct {
	Line int    // 1-based line in the file, 0 when not from the file
	Env  string // the environment variable that set the value, if any
	Path string // dotted key path, e.g. "matrix.as_token"
	Msg  string
}

func (p Problem) Error() string {
	var b strings.Builder
	switch {
	case p.Env != "":
		b.WriteString(p.Env)
		b.WriteString(": ")
	case p.Line > 0:
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a configuration. Load, Parse and
// Validate return it as their error so that a user sees all of them at once;
// use errors.As to count or inspect them.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// err returns ps as an error, or nil when there is no problem.
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Load reads the configuration file at path, applies the MSNBRIDGE_*
// environment overrides and validates the result.
func Load(path string) (*Config, error) {
	cfg, err := LoadUnvalidated(path)
	var ps Problems
	if err != nil && !errors.As(err, &ps) {
		return nil, err // the file could not be read
	}
	// Validate what did decode, so that every problem is listed at once.
	return cfg, mergeProblems(ps, cfg.Validate()).err()
}

// mergeProblems appends the problems of err (from Validate) to ps and puts
// them in file order, those without a line (environment, whole file) last.
func mergeProblems(ps Problems, err error) Problems {
	if err != nil {
		var vps Problems
		if errors.As(err, &vps) {
			ps = append(ps, vps...)
		} else {
			ps = append(ps, Problem{Msg: err.Error()})
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = math.MaxInt
		}
		if lb == 0 {
			lb = math.MaxInt
		}
		return cmp.Compare(la, lb)
	})
	return ps
}

// LoadUnvalidated is Load without Validate: it reads the file strictly and
// applies the environment overrides. It is for callers that fill in values
// before validating (msnbridge -g fills in generated appservice tokens).
func LoadUnvalidated(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; is it the right file?", path, MaxFileSize)
	}
	cfg, ps := decode(data)
	ps = append(ps, cfg.applyEnv(os.LookupEnv)...)
	return cfg, ps.err()
}

// Parse decodes a configuration file's contents strictly over the defaults
// and validates it. It does not look at the environment (Load does).
func Parse(data []byte) (*Config, error) {
	return ParseWithEnv(data, nil)
}

// ParseWithEnv is Parse with environment overrides looked up through
// lookup (os.LookupEnv in Load); nil means none.
func ParseWithEnv(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg, ps := decode(data)
	if lookup != nil {
		ps = append(ps, cfg.applyEnv(lookup)...)
	}
	return cfg, mergeProblems(ps, cfg.Validate()).err()
}

// decode parses data over Defaults(). It never fails outright: what cannot
// be decoded is reported and left at its default, so that validation can
// still report the rest.
func decode(data []byte) (*Config, Problems) {
	cfg := Defaults()
	cfg.origins = map[string]origin{}
	if len(data) > MaxFileSize {
		return cfg, Problems{{Msg: fmt.Sprintf("configuration larger than %d bytes", MaxFileSize)}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		// yaml.v3's syntax errors already say "yaml: line N: ...".
		return cfg, Problems{{Msg: err.Error()}}
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		// A second document would be silently ignored: say so instead.
		return cfg, Problems{{Line: next.Line, Msg: "more than one YAML document; the configuration is one"}}
	}
	d := decoder{origins: cfg.origins}
	if doc.Kind == 0 { // empty file: all defaults
		return cfg, nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return cfg, nil
		}
		root = root.Content[0]
	}
	d.value(root, reflect.ValueOf(cfg).Elem(), "")
	return cfg, d.problems
}

// origin is where a key's value came from, so that validation problems can
// point at it.
type origin struct {
	line int
	env  string
}

type decoder struct {
	problems Problems
	origins  map[string]origin
}

func (d *decoder) add(n *yaml.Node, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var durationType = reflect.TypeOf(time.Duration(0))

// value decodes n into v, which is addressable. A null node keeps v's
// default.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		// Aliases could expand exponentially and hide where a value came
		// from; a config file has no need for them.
		d.add(n, path, "YAML aliases are not supported in the configuration")
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if _, ok := d.origins[path]; !ok {
		d.origins[path] = origin{line: n.Line}
	}
	switch {
	case v.Kind() == reflect.Struct:
		d.structValue(n, v, path)
	case v.Kind() == reflect.Map:
		d.mapValue(n, v, path)
	case v.Kind() == reflect.Slice:
		d.sliceValue(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) structValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.add(n, path, "expected a mapping of keys, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag := yamlName(t.Field(i)); tag != "" {
			fields[tag] = i
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(k, path, "keys must be plain names, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			d.add(k, p, "unknown key")
			continue
		}
		if seen[k.Value] {
			d.add(k, p, "key given twice")
			continue
		}
		seen[k.Value] = true
		// Point at the key: a section's value starts on the next line.
		d.origins[p] = origin{line: k.Line}
		d.value(val, v.Field(idx), p)
	}
}

func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.add(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(k, path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.add(k, p, "key given twice")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			d.add(val, p, "needs a value")
			continue
		}
		before := len(d.problems)
		d.value(val, elem, p)
		if len(d.problems) == before {
			m.SetMapIndex(reflect.ValueOf(k.Value), elem)
		}
	}
	v.Set(m)
}

func (d *decoder) sliceValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.add(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		elem := reflect.New(v.Type().Elem()).Elem()
		p := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind == yaml.ScalarNode && item.Tag == "!!null" {
			d.add(item, p, "empty list item")
			continue
		}
		d.value(item, elem, p)
		s = reflect.Append(s, elem)
	}
	v.Set(s)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.add(n, path, "expected %s, got %s", kindName(v.Type()), describe(n))
		return
	}
	if err := setScalar(v, n.Value, n.Tag); err != nil {
		d.add(n, path, "%v", err)
	}
}

// setScalar parses s into v. tag is the YAML tag ("" for an environment
// variable, which is always a string).
func setScalar(v reflect.Value, s, tag string) error {
	switch {
	case v.Type() == durationType:
		if tag == "!!int" && s == "0" {
			v.SetInt(0)
			return nil
		}
		dur, err := time.ParseDuration(s)
		if err != nil || dur < 0 {
			return fmt.Errorf("expected a duration such as 30s or 2m, got %q", s)
		}
		v.SetInt(int64(dur))
	case v.Type() == byteSizeType:
		if tag != "" && tag != "!!int" && tag != "!!str" {
			return fmt.Errorf("expected a size such as 10MiB, got %q", s)
		}
		n, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.String:
		if tag != "" && tag != "!!str" && tag != "!!int" && tag != "!!float" && tag != "!!bool" {
			return fmt.Errorf("expected a string, got %s", tag)
		}
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		if tag != "" && tag != "!!bool" {
			return fmt.Errorf("expected true or false, got %q", s)
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("expected true or false, got %q", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		if tag != "" && tag != "!!int" {
			return fmt.Errorf("expected a whole number, got %q", s)
		}
		i, err := strconv.ParseInt(s, 0, 32)
		if err != nil {
			return fmt.Errorf("expected a whole number, got %q", s)
		}
		v.SetInt(i)
	default:
		return fmt.Errorf("unsupported configuration type %s", v.Type())
	}
	return nil
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	return name
}

func kindName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t == byteSizeType:
		return "a size"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "a whole number"
	default:
		return "a string"
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%q", v)
	}
	return "something else"
}

// EnvPrefix starts every environment override.
const EnvPrefix = "MSNBRIDGE_"

// EnvName is the environment variable that overrides the key at path, e.g.
// "matrix.as_token" -> MSNBRIDGE_MATRIX_AS_TOKEN.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv overrides every scalar (and list-of-strings, comma-separated)
// key from the environment. Maps are file-only.
func (c *Config) applyEnv(lookup func(string) (string, bool)) Problems {
	if c.origins == nil {
		c.origins = map[string]origin{}
	}
	var ps Problems
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name := yamlName(t.Field(i))
			if name == "" {
				continue
			}
			fv, p := v.Field(i), join(path, name)
			if fv.Kind() == reflect.Struct && fv.Type() != durationType {
				walk(fv, p)
				continue
			}
			env := EnvName(p)
			s, ok := lookup(env)
			if !ok {
				continue
			}
			switch fv.Kind() {
			case reflect.Map:
				continue
			case reflect.Slice:
				var items []string
				for _, it := range strings.Split(s, ",") {
					if it = strings.TrimSpace(it); it != "" {
						items = append(items, it)
					}
				}
				fv.Set(reflect.ValueOf(items))
			default:
				if err := setScalar(fv, strings.TrimSpace(s), ""); err != nil {
					ps = append(ps, Problem{Env: env, Path: p, Msg: err.Error()})
					continue
				}
			}
			c.origins[p] = origin{env: env}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return ps
}
