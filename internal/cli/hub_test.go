package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHubBadConfigIsOneLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hub.yaml")
	os.WriteFile(p, []byte("public_url: http://127.0.0.1:8000/\ndata_dir: x\ncrypt_keys: [\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"]\ntenants:\n  - key: bunny\n    label: Bunny\n    client_id: a\n    client_secret: b\n    authorize_url: http://127.0.0.1:1/o/authorize/\n    token_url: http://127.0.0.1:1/o/token/\n    userinfo_url: http://127.0.0.1:1/api/userinfo/\n    allow_all: true\n"), 0o600)
	var stdout, stderr bytes.Buffer
	code := Main([]string{"hub", "--config", p}, &stdout, &stderr)
	want := "ohtkhub hub: " + p + ": tenants[0].api_url: invalid configuration: missing\n"
	if code != 1 || stderr.String() != want {
		t.Fatalf("exit %d, stderr %q, want %q", code, stderr.String(), want)
	}
	stderr.Reset()
	if code := Main([]string{"hub", "--config", filepath.Join(t.TempDir(), "none.yaml")}, &stdout, &stderr); code != 1 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "no such file") {
		t.Fatalf("missing file: exit %d %q", code, stderr.String())
	}
}
