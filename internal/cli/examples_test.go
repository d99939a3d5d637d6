package cli

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/api"
	"github.com/ohtkhub/ohtkhub/internal/config"
)

// TestExamplesLoadAndAreInREADME: the configuration examples the README shows are the files
// under examples/, and both load without error.
func TestExamplesLoadAndAreInREADME(t *testing.T) {
	t.Setenv("OHTKHUB_CRYPT_KEY", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if _, err := config.Load("../../examples/hub.yaml"); err != nil {
		t.Errorf("examples/hub.yaml: %v", err)
	}
	if _, err := api.LoadConfig("../../examples/api.yaml"); err != nil {
		t.Errorf("examples/api.yaml: %v", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hub.yaml", "api.yaml"} {
		body, err := os.ReadFile("../../examples/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "```yaml\n"+string(body)+"```") {
			t.Errorf("README.md does not show examples/%s as it is", name)
		}
	}
}
