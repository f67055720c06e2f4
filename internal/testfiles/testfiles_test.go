package testfiles

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTarGzRoundTrip(t *testing.T) {
	files := map[string]string{"b/data.json": `{"x": 1}`, "a.rego": "package a\n", ".manifest": `{"revision": "r"}`}
	archive := TarGz(t, files)
	if !bytes.Equal(archive, TarGz(t, files)) {
		t.Error("the same files made different archives")
	}
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	got := map[string]string{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = string(b)
		order = append(order, h.Name)
	}
	if !reflect.DeepEqual(got, files) {
		t.Errorf("unpacked %v, want %v", got, files)
	}
	if want := []string{".manifest", "a.rego", "b/data.json"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}

func TestTreeSeesChanges(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := Tree(t, dir)
	if again := Tree(t, dir); !reflect.DeepEqual(before, again) {
		t.Fatalf("two listings of an unchanged tree differ: %v %v", before, again)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("22"), 0o600); err != nil {
		t.Fatal(err)
	}
	if after := Tree(t, dir); reflect.DeepEqual(before, after) {
		t.Error("a changed file left the listing as it was")
	}
}
