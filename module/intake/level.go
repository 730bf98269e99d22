package intake

import (
	"strconv"
	"strings"

	"go.uber.org/zap/zapcore"
)

// Python's level numbers, the scale every record is compared on.
const (
	LevelNotSet   = 0
	LevelDebug    = 10
	LevelInfo     = 20
	LevelNotice   = 25 // syslog notice, between Python's INFO and WARNING
	LevelWarning  = 30
	LevelError    = 40
	LevelCritical = 50
	LevelAlert    = 60 // syslog alert
	LevelEmerg    = 70 // syslog emerg
)

// levelNames maps every level word we understand, lower-cased, onto
// Python's scale: Python's names, syslog's severities (RFC 5424), and the
// words zap, slog and most JSON loggers use.
var levelNames = map[string]int{
	"notset":        LevelNotSet,
	"trace":         5,
	"debug":         LevelDebug,
	"info":          LevelInfo,
	"informational": LevelInfo,
	"notice":        LevelNotice,
	"warn":          LevelWarning,
	"warning":       LevelWarning,
	"error":         LevelError,
	"err":           LevelError,
	"critical":      LevelCritical,
	"crit":          LevelCritical,
	"fatal":         LevelCritical, // Python's logging.FATAL is CRITICAL
	"dpanic":        LevelCritical,
	"alert":         LevelAlert,
	"panic":         LevelEmerg, // syslog's deprecated alias of emerg
	"emerg":         LevelEmerg,
	"emergency":     LevelEmerg,
}

// ParseLevel maps a level as any of our sources write it onto Python's
// scale: a Python level name or number ("WARNING", "25", "Level 25"), a
// syslog severity name ("notice", "crit"), or a slog level with offset
// ("INFO+2", slog's 4 steps between levels spread over Python's 10).
// Matching is case-insensitive.
func ParseLevel(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	// Most levels arrive as "INFO" or "info": look them up as they are
	// before paying for a lower-cased copy.
	if n, ok := levelNames[s]; ok {
		return n, true
	}
	lower := strings.ToLower(s)
	if n, ok := levelNames[lower]; ok {
		return n, true
	}
	// Python's logging.getLevelName(25) is "Level 25".
	if rest, ok := strings.CutPrefix(lower, "level "); ok {
		if n, err := strconv.Atoi(rest); err == nil {
			return n, true
		}
	}
	// slog.Level.String(): "DEBUG-2", "INFO+2", "WARN+1", "ERROR+4".
	if i := strings.IndexAny(lower, "+-"); i > 0 {
		base, ok := slogBase[lower[:i]]
		if !ok {
			return 0, false
		}
		off, err := strconv.Atoi(lower[i:])
		if err != nil {
			return 0, false
		}
		return slogToPython(base + off), true
	}
	return 0, false
}

func init() {
	// Upper-case spellings too, for the lookup without lower-casing.
	for name, n := range levelNames {
		if up := strings.ToUpper(name); up != name {
			levelNames[up] = n
		}
	}
}

var slogBase = map[string]int{"debug": -4, "info": 0, "warn": 4, "error": 8}

// slogToPython maps slog's scale (DEBUG -4, INFO 0, WARN 4, ERROR 8) onto
// Python's (10, 20, 30, 40), rounding half away from zero.
func slogToPython(l int) int {
	x := 20*2 + l*5 // twice the result, to stay in integers
	if x >= 0 {
		return (x + 1) / 2
	}
	return (x - 1) / 2
}

// ZapLevel maps a Python-scale level onto zap's levels: each number takes
// the highest named level it reaches, as a Python handler's threshold
// would (25 is info, 45 is error). CRITICAL is DPanic, syslog alert is
// Panic and emerg is Fatal: zap has no names for them, and entries are
// written straight to the core, so these levels never panic or exit.
func ZapLevel(levelNo int) zapcore.Level {
	switch {
	case levelNo < LevelInfo:
		return zapcore.DebugLevel
	case levelNo < LevelWarning:
		return zapcore.InfoLevel
	case levelNo < LevelError:
		return zapcore.WarnLevel
	case levelNo < LevelCritical:
		return zapcore.ErrorLevel
	case levelNo < LevelAlert:
		return zapcore.DPanicLevel
	case levelNo < LevelEmerg:
		return zapcore.PanicLevel
	default:
		return zapcore.FatalLevel
	}
}

// LevelName returns Python's name for a level number ("Level 25" for
// numbers Python has no name for), used when a source gave only a number.
func LevelName(levelNo int) string {
	switch levelNo {
	case LevelNotSet:
		return "NOTSET"
	case LevelDebug:
		return "DEBUG"
	case LevelInfo:
		return "INFO"
	case LevelWarning:
		return "WARNING"
	case LevelError:
		return "ERROR"
	case LevelCritical:
		return "CRITICAL"
	}
	return "Level " + strconv.Itoa(levelNo)
}

// FromSlog maps a level on slog's scale (DEBUG -4, INFO 0, WARN 4,
// ERROR 8, any offset between) onto Python's, as ParseLevel does for
// slog's names with an offset ("INFO+2" is 25).
func FromSlog(l int) int { return slogToPython(l) }
