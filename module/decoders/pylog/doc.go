// Package pylog decodes what Python's logging module sends over the
// network, without running any Python and without trusting the sender.
//
// logging.handlers.HTTPHandler posts a LogRecord's __dict__ as a form
// (ParseForm, FromForm). Every field arrives as str() of itself, so the
// message template and its arguments come separately: `msg` is the
// unformatted template and `args` is the repr() of the argument tuple or
// dict. ParseLiteral reads such repr() text into a Value tree, and Format
// renders the template the way LogRecord.getMessage() does (`msg % args`),
// or reports that it cannot, so the caller can keep both verbatim instead
// of guessing.
//
// Value is the one representation of a Python object here: the repr()
// parser and the pickle decoder for SocketHandler both produce it,
// which is why every Value carries the repr() text it stands for (Raw)
// and the constructors (Str, Int, Tuple, ...) compute it the way Python
// does.
package pylog
