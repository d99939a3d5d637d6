package exportapi

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPythonDownload runs the notebook's ohtk module (real python3) against the Export
// API: download saves xlsx and Parquet files under the API's file names or a given path.
func TestPythonDownload(t *testing.T) {
	e := seeded(t)
	tok := addToken(t, e.db, userAdmin, "notebook-token", testNow.Add(time.Hour))
	module, err := filepath.Abs("../../python")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "python3", "-c", `import ohtk
print(ohtk.download("incident-reports", format="parquet"))
print(ohtk.download("incident-reports/flat", "flat.xlsx", report_type_id="`+reportTypeID+`"))`)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+module, "OHTK_ACCESS_TOKEN="+tok, "OHTK_API_URL="+e.srv.URL+"/t/bunny",
		"JUPYTERHUB_API_URL=", "JUPYTERHUB_USER=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	paths := strings.Fields(string(out))
	if !slices.Equal(paths, []string{"bunny-incident-reports-20260601T120000Z.parquet", "flat.xlsx"}) {
		t.Fatalf("paths %q", paths)
	}
	b, err := os.ReadFile(filepath.Join(dir, paths[0]))
	if err != nil {
		t.Fatal(err)
	}
	pq, _ := readParquet(t, response{status: 200, body: string(b)})
	if got := pq.column(t, "id"); !slices.Equal(got, []any{reportOld, reportMany}) {
		t.Errorf("parquet ids %v", got)
	}
	b, err = os.ReadFile(filepath.Join(dir, paths[1]))
	if err != nil {
		t.Fatal(err)
	}
	f, sheets := readXLSX(t, response{status: 200, body: string(b)})
	if !slices.Equal(f.GetSheetList(), []string{"reports", "herd"}) || len(sheets["reports"].rows) != 2 || sheets["reports"].row(t, "id", reportMany)["title"] != "ไก่ตายผิดปกติ" {
		t.Errorf("xlsx sheets %q: %v", f.GetSheetList(), sheets["reports"].rows)
	}
}
