package lifecycle

import (
	"runtime"
	"sync"
	"weak"
)

// Kept finds, by key, values that Caddy holds and this process does not
// own: the writers Caddy's pool keeps (forever, in v2.11) and hands to a
// later config with the same WriterKey without calling OpenWriter again.
// A config that uses the key again must reach that writer, so it is
// remembered, but weakly: a key is deleted when its value is garbage
// collected, which is when Caddy lets go of it. The zero value is ready
// to use.
type Kept[T any] struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[T]
}

// Swap makes v the value of key and returns the previous one, if it is
// still alive.
func (k *Kept[T]) Swap(key string, v *T) (old *T) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]weak.Pointer[T]{}
	}
	wp := weak.Make(v)
	if prev, ok := k.m[key]; ok {
		old = prev.Value()
		if prev == wp {
			return old
		}
	}
	k.m[key] = wp
	runtime.AddCleanup(v, k.forget, cleanupArg[T]{key, wp})
	return old
}

type cleanupArg[T any] struct {
	key string
	wp  weak.Pointer[T]
}

// forget deletes a key whose value was collected, unless the key has a
// newer value.
func (k *Kept[T]) forget(a cleanupArg[T]) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m[a.key] == a.wp {
		delete(k.m, a.key)
	}
}

// Load returns the value of key, or nil.
func (k *Kept[T]) Load(key string) *T {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key].Value()
}

// Len returns how many keys are remembered.
func (k *Kept[T]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
