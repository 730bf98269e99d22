package pylog

import "testing"

// TestPickleNaNKeys: two NaN keys of a dict are two entries, as in
// Python, unless they are one memoized float (also inside tuples).
// Reprs are what CPython 3.11 prints for pickle.loads of each.
func TestPickleNaNKeys(t *testing.T) {
	const nan = "G\x7f\xf8\x00\x00\x00\x00\x00\x00"
	for _, c := range []struct{ pickle, repr string }{
		{"\x80\x02}(" + nan + "K\x01" + nan + "K\x02u.", "{nan: 1, nan: 2}"},
		{"\x80\x02}(" + nan + "q\x01K\x01h\x01K\x02u.", "{nan: 2}"},
		{"\x80\x02}(" + nan + "q\x01\x85q\x02K\x01h\x01\x85K\x02u.", "{(nan,): 2}"},
		{"\x80\x02}(" + nan + "\x85K\x01" + nan + "\x85K\x02u.", "{(nan,): 1, (nan,): 2}"},
	} {
		v, err := DecodePickle([]byte(c.pickle), PickleLimits{})
		if err != nil || v.Raw != c.repr {
			t.Errorf("%q: got %s, %v; want %s", c.pickle, v.Raw, err, c.repr)
		}
	}
}
