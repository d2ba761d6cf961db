package config

import (
	"testing"
	"time"
)

func TestFilesAndDisplayPicturesDefaults(t *testing.T) {
	cfg, err := Parse(Example)
	if err != nil {
		t.Fatal(err)
	}
	def := Defaults()
	// The example documents the defaults.
	if cfg.Bridge.Files != def.Bridge.Files || cfg.Bridge.DisplayPictures != def.Bridge.DisplayPictures {
		t.Fatalf("example %+v %+v, defaults %+v %+v", cfg.Bridge.Files, cfg.Bridge.DisplayPictures,
			def.Bridge.Files, def.Bridge.DisplayPictures)
	}
	if def.Bridge.Files.MaxSize != 100<<20 || def.Bridge.Files.Retention != 7*24*time.Hour ||
		!def.Bridge.DisplayPictures.Enabled || def.Bridge.DisplayPictures.MaxSize != 1<<20 || def.Bridge.Files.Dir == "" {
		t.Fatalf("defaults = %+v %+v", def.Bridge.Files, def.Bridge.DisplayPictures)
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
	}{
		{"0", 0}, {"1234", 1234}, {"512KiB", 512 << 10}, {"10 MiB", 10 << 20}, {"1GiB", 1 << 30},
		{"500KB", 500_000}, {"10mb", 10_000_000}, {"2G", 2 << 30}, {"64k", 64 << 10}, {"100B", 100},
	} {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "ten", "9999999999999TiB", "1 XB"} {
		if got, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", bad, got)
		}
	}
	for _, tc := range []struct {
		in   ByteSize
		want string
	}{{100 * MiB, "100MiB"}, {512 * KiB, "512KiB"}, {2 * GiB, "2GiB"}, {1000, "1000 bytes"}, {0, "0 bytes"}} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", int64(tc.in), got, tc.want)
		}
	}
}

func TestFilesSection(t *testing.T) {
	cfg, err := Parse([]byte("bridge:\n  files:\n    dir: /var/lib/msn\n    max_size: 5MiB\n    retention: 24h\n  display_pictures:\n    enabled: false\n    max_size: 200000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bridge.Files != (Files{Dir: "/var/lib/msn", MaxSize: 5 << 20, Retention: 24 * time.Hour}) ||
		cfg.Bridge.DisplayPictures != (DisplayPictures{Enabled: false, MaxSize: 200000}) {
		t.Fatalf("parsed %+v %+v", cfg.Bridge.Files, cfg.Bridge.DisplayPictures)
	}

	// File transfer off: no directory needed.
	if _, err := Parse([]byte("bridge:\n  files:\n    dir: \"\"\n    max_size: 0\n")); err != nil {
		t.Fatalf("files off: %v", err)
	}

	_, err = Parse([]byte("bridge:\n  files:\n    dir: \"\"\n    retention: 10s\n  display_pictures:\n    max_size: 1GiB\n"))
	ps := problemsOf(t, err)
	lines := map[string]int{}
	for _, p := range ps {
		lines[p.Path] = p.Line
	}
	if len(ps) != 3 || lines["bridge.files.dir"] != 3 || lines["bridge.files.retention"] != 4 || lines["bridge.display_pictures.max_size"] != 6 {
		t.Fatalf("want dir (line 3), retention (line 4), display_pictures.max_size (line 6):\n%v", ps)
	}

	_, err = Parse([]byte("bridge:\n  files:\n    max_size: lots\n"))
	if ps = problemsOf(t, err); len(ps) != 1 || ps[0].Path != "bridge.files.max_size" || ps[0].Line != 3 {
		t.Fatalf("bad size: %v", ps)
	}
	_, err = Parse([]byte("bridge:\n  display_pictures:\n    enabled: true\n    max_size: 0\n"))
	if ps = problemsOf(t, err); len(ps) != 1 || ps[0].Path != "bridge.display_pictures.max_size" {
		t.Fatalf("zero picture size: %v", ps)
	}
	_, err = Parse([]byte("http:\n  public_url: msn.example.org\n"))
	if ps = problemsOf(t, err); len(ps) != 1 || ps[0].Path != "http.public_url" {
		t.Fatalf("public_url without a scheme: %v", ps)
	}
}

// Sizes and durations come from the environment like every other scalar.
func TestFilesEnvOverrides(t *testing.T) {
	env := map[string]string{
		"MSNBRIDGE_BRIDGE_FILES_MAX_SIZE":                "2MiB",
		"MSNBRIDGE_BRIDGE_FILES_DIR":                     "/srv/media",
		"MSNBRIDGE_BRIDGE_FILES_RETENTION":               "48h",
		"MSNBRIDGE_BRIDGE_DISPLAY_PICTURES_ENABLED":      "false",
		"MSNBRIDGE_BRIDGE_DISPLAY_PICTURES_MAX_SIZE":     "64KiB",
		"MSNBRIDGE_HTTP_PUBLIC_URL":                      "https://msn.example.org",
		"MSNBRIDGE_BRIDGE_DISPLAY_PICTURES_UNKNOWN_WORD": "ignored",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := ParseWithEnv(nil, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bridge.Files != (Files{Dir: "/srv/media", MaxSize: 2 << 20, Retention: 48 * time.Hour}) ||
		cfg.Bridge.DisplayPictures != (DisplayPictures{MaxSize: 64 << 10}) || cfg.HTTP.PublicURL != "https://msn.example.org" {
		t.Fatalf("overrides: %+v %+v %q", cfg.Bridge.Files, cfg.Bridge.DisplayPictures, cfg.HTTP.PublicURL)
	}
	env = map[string]string{"MSNBRIDGE_BRIDGE_FILES_MAX_SIZE": "huge"}
	_, err = ParseWithEnv(nil, lookup)
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Env != "MSNBRIDGE_BRIDGE_FILES_MAX_SIZE" {
		t.Fatalf("bad size from the environment: %v", ps)
	}
}
