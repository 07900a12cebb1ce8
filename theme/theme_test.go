package theme

import (
	"reflect"
	"strings"
	"testing"
)

func TestEveryPaletteLoads(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	names := Names()
	for _, want := range []string{"default", "dark", "light", "colorblind", "mono"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("Names() = %v, missing %q", names, want)
		}
	}
	for _, n := range names {
		s, err := Load(n)
		if err != nil {
			t.Fatalf("Load(%q): %v", n, err)
		}
		if s.Name != n {
			t.Errorf("Load(%q).Name = %q", n, s.Name)
		}
		if (n == "mono") == s.Color {
			t.Errorf("Load(%q).Color = %v", n, s.Color)
		}
		// Every symbol is set, so no state relies on colour alone.
		v := reflect.ValueOf(s.Symbols)
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).String() == "" {
				t.Errorf("%s: symbol %s is empty", n, v.Type().Field(i).Name)
			}
		}
		// Styles render text without losing it.
		if out := s.EdgeUp.Render("up"); !strings.Contains(out, "up") {
			t.Errorf("%s: EdgeUp.Render lost text: %q", n, out)
		}
	}
}

func TestEmptyNameIsDefault(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	s, err := Load("")
	if err != nil || s.Name != DefaultName {
		t.Fatalf("Load(\"\") = %q, %v", s.Name, err)
	}
	if s, err := Load(" Dark "); err != nil || s.Name != "dark" {
		t.Fatalf("Load(\" Dark \") = %q, %v", s.Name, err)
	}
}

func TestUnknownNameErrors(t *testing.T) {
	if _, err := Load("solarized-neon"); err == nil {
		t.Fatal("Load of an unknown theme did not fail")
	} else if !strings.Contains(err.Error(), "solarized-neon") || !strings.Contains(err.Error(), "default") {
		t.Errorf("error does not name the theme and the choices: %v", err)
	}
	if s := MustLoad("nope"); s.Name == "" {
		t.Error("MustLoad fallback is empty")
	}
}

func TestNoColorForcesMono(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	for _, n := range []string{"default", "dark", "light", "colorblind"} {
		s, err := Load(n)
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "mono" || s.Color {
			t.Errorf("NO_COLOR=1: Load(%q) = %q (color %v), want mono", n, s.Name, s.Color)
		}
		if s.ProgressStart != "" || s.ProgressEnd != "" {
			t.Errorf("mono has progress colours")
		}
	}
	if _, err := Load("bogus"); err == nil {
		t.Error("NO_COLOR must not hide an unknown theme name")
	}
}

func TestColorblindStatesDifferBeyondRedGreen(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	s, _ := Load("colorblind")
	p := palettes["colorblind"]
	if !p.boldStates || !s.OK.GetBold() || !s.Warn.GetBold() {
		t.Error("colorblind states must also differ by weight")
	}
	for _, c := range []string{p.ok, p.err} {
		if c == "2" || c == "1" || c == "#00ff00" || c == "#ff0000" {
			t.Errorf("colorblind uses a plain red/green: %s", c)
		}
	}
	if s.Symbols.OK == s.Symbols.Fail || s.Symbols.Up == s.Symbols.Reconnecting {
		t.Error("state symbols must differ")
	}
}
