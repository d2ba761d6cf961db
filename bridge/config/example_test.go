package config

import (
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestExampleDocumentsEveryKey: a key added to Config must be added to
// example.yaml (with its comment), or users never learn of it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Example, &doc); err != nil {
		t.Fatal(err)
	}
	inExample := map[string]bool{}
	var collect func(n *yaml.Node, path string)
	collect = func(n *yaml.Node, path string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			inExample[p] = true
			if n.Content[i].HeadComment == "" && n.Content[i].LineComment == "" && path != "bridge.permissions" && path != "database" {
				t.Errorf("example key %s has no comment", p)
			}
			collect(n.Content[i+1], p)
		}
	}
	collect(doc.Content[0], "")

	var walk func(tp reflect.Type, path string)
	walk = func(tp reflect.Type, path string) {
		for i := 0; i < tp.NumField(); i++ {
			name := yamlName(tp.Field(i))
			if name == "" {
				continue
			}
			p := join(path, name)
			if !inExample[p] {
				t.Errorf("config key %s is missing from example.yaml", p)
			}
			if ft := tp.Field(i).Type; ft.Kind() == reflect.Struct && ft != durationType {
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}
