// Command render is a stand-in for `helm template` on machines without helm: it renders
// a chart's templates with Go's text/template and the few helper functions the chart uses.
//
// Usage: render CHART_DIR < context.json
//
// context.json holds {"Values": ..., "Chart": ..., "Release": ...} (the caller turns
// YAML into JSON, since the standard library has no YAML). Output: one YAML document per
// template, each preceded by "---" and a "# Source:" comment, as helm prints them.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// plain matches strings YAML reads back as the same string without quotes.
var plain = regexp.MustCompile(`^[A-Za-z/][A-Za-z0-9_./@-]*(:[A-Za-z0-9_./@-]+)*$`)

// YAML 1.1 words a plain scalar would turn into booleans or null.
var reserved = map[string]bool{
	"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
	"y": true, "n": true, "null": true,
}

func plainSafe(s string) bool {
	return plain.MatchString(s) && !reserved[strings.ToLower(s)]
}

func main() {
	if len(os.Args) != 2 {
		fail(errors.New("usage: render CHART_DIR < context.json"))
	}
	// Numbers become float64, as in helm (its values pass through JSON too).
	decoder := json.NewDecoder(os.Stdin)
	var context map[string]interface{}
	if err := decoder.Decode(&context); err != nil {
		fail(fmt.Errorf("reading the context: %w", err))
	}
	out, err := render(os.Args[1], context)
	if err != nil {
		fail(err)
	}
	os.Stdout.WriteString(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "render:", err)
	os.Exit(1)
}

// chartFiles is helm's .Files: Get reads a file of the chart, "" when it cannot.
type chartFiles struct{ dir string }

func (f chartFiles) Get(name string) string {
	data, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		return ""
	}
	return string(data)
}

func render(chartDir string, context map[string]interface{}) (string, error) {
	context["Files"] = chartFiles{chartDir}
	chartName := fmt.Sprint(context["Chart"].(map[string]interface{})["Name"])
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	root := template.New("chart")
	root.Option("missingkey=default")
	root.Funcs(funcs(root))
	var names []string
	for _, file := range files {
		base := filepath.Base(file)
		if !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".tpl") {
			continue
		}
		text, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		name := chartName + "/templates/" + base
		if _, err := root.New(name).Parse(string(text)); err != nil {
			return "", err
		}
		if !strings.HasPrefix(base, "_") {
			names = append(names, name)
		}
	}
	var out strings.Builder
	for _, name := range names {
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, context); err != nil {
			return "", err
		}
		// helm prints a missing value as an empty string
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(text))
	}
	return out.String(), nil
}

// funcs are the helpers of helm (sprig) that the chart uses, with helm's argument order.
func funcs(root *template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"toYaml":     toYaml,
		"indent":     indent,
		"nindent":    func(n int, s string) string { return "\n" + indent(n, s) },
		"default":    func(def interface{}, given ...interface{}) interface{} { return defaultOf(def, given) },
		"quote":      func(v interface{}) string { return strconv.Quote(str(v)) },
		"required":   required,
		"trunc":      func(n int, s string) string { return truncate(n, s) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"sha256sum": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		},
	}
}

func str(v interface{}) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func truncate(n int, s string) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// empty is sprig's notion: nil, zero numbers, "", false, empty maps and lists.
func empty(v interface{}) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return r.Len() == 0
	case reflect.Bool:
		return !r.Bool()
	case reflect.Int, reflect.Int64, reflect.Float64:
		return r.IsZero()
	}
	return false
}

func defaultOf(def interface{}, given []interface{}) interface{} {
	if len(given) == 0 || empty(given[0]) {
		return def
	}
	return given[0]
}

func required(message string, v interface{}) (interface{}, error) {
	if v == nil {
		return nil, errors.New(message)
	}
	if s, ok := v.(string); ok && s == "" {
		return nil, errors.New(message)
	}
	return v, nil
}

// toYaml writes block-style YAML with sorted keys and JSON-quoted strings (valid YAML),
// without the trailing newline, as helm's toYaml does.
func toYaml(v interface{}) string {
	var b strings.Builder
	writeYaml(&b, v, 0)
	return strings.TrimSuffix(b.String(), "\n")
}

func writeYaml(b *strings.Builder, v interface{}, level int) {
	pad := strings.Repeat("  ", level)
	switch value := v.(type) {
	case map[string]interface{}:
		if len(value) == 0 {
			b.WriteString(pad + "{}\n")
			return
		}
		keys := make([]string, 0, len(value))
		for k := range value {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			writeEntry(b, pad+scalar(k)+":", value[k], level)
		}
	case []interface{}:
		if len(value) == 0 {
			b.WriteString(pad + "[]\n")
			return
		}
		for _, item := range value {
			writeItem(b, pad, item, level)
		}
	default:
		b.WriteString(pad + scalar(value) + "\n")
	}
}

func writeEntry(b *strings.Builder, head string, v interface{}, level int) {
	switch value := v.(type) {
	case map[string]interface{}:
		if len(value) == 0 {
			b.WriteString(head + " {}\n")
			return
		}
		b.WriteString(head + "\n")
		writeYaml(b, value, level+1)
	case []interface{}:
		if len(value) == 0 {
			b.WriteString(head + " []\n")
			return
		}
		b.WriteString(head + "\n")
		writeYaml(b, value, level)
	default:
		b.WriteString(head + " " + scalar(value) + "\n")
	}
}

// writeItem writes "- " and the item; a mapping's first key shares the dash's line.
func writeItem(b *strings.Builder, pad string, item interface{}, level int) {
	var inner strings.Builder
	writeYaml(&inner, item, level+1)
	lines := strings.SplitAfter(inner.String(), "\n")
	first := strings.TrimPrefix(lines[0], strings.Repeat("  ", level+1))
	b.WriteString(pad + "- " + first)
	for _, line := range lines[1:] {
		b.WriteString(line)
	}
}

func scalar(v interface{}) string {
	switch value := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(value)
	case float64:
		number, _ := json.Marshal(value)
		return string(number)
	case string:
		if plainSafe(value) {
			return value
		}
		quoted, _ := json.Marshal(value)
		return string(quoted)
	default:
		quoted, _ := json.Marshal(fmt.Sprint(value))
		return string(quoted)
	}
}
