package intake

import (
	"testing"

	"go.uber.org/zap/zapcore"
)

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"DEBUG", 10, true}, {"info", 20, true}, {"WARNING", 30, true}, {"warn", 30, true},
		{"ERROR", 40, true}, {"CRITICAL", 50, true}, {"FATAL", 50, true}, {"NOTSET", 0, true},
		{"notice", 25, true}, {"crit", 50, true}, {"err", 40, true}, {"alert", 60, true},
		{"emerg", 70, true}, {"panic", 70, true}, {"informational", 20, true},
		{"25", 25, true}, {"Level 35", 35, true}, {" Info ", 20, true},
		{"INFO+2", 25, true}, {"DEBUG-4", 0, true}, {"ERROR+4", 50, true}, {"WARN-1", 28, true},
		{"", 0, false}, {"loud", 0, false}, {"INFO+x", 0, false}, {"Level x", 0, false}, {"+3", 3, true},
	} {
		got, ok := ParseLevel(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("ParseLevel(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestZapLevel(t *testing.T) {
	for no, want := range map[int]zapcore.Level{
		0: zapcore.DebugLevel, 10: zapcore.DebugLevel, 19: zapcore.DebugLevel,
		20: zapcore.InfoLevel, 25: zapcore.InfoLevel, 30: zapcore.WarnLevel,
		40: zapcore.ErrorLevel, 45: zapcore.ErrorLevel, 50: zapcore.DPanicLevel,
		60: zapcore.PanicLevel, 70: zapcore.FatalLevel, 1000: zapcore.FatalLevel,
	} {
		if got := ZapLevel(no); got != want {
			t.Errorf("ZapLevel(%d) = %v, want %v", no, got, want)
		}
	}
}

func TestLevelName(t *testing.T) {
	if LevelName(30) != "WARNING" || LevelName(25) != "Level 25" {
		t.Fatalf("LevelName: got %q and %q", LevelName(30), LevelName(25))
	}
}
