// Package lifecycle keeps what must outlive one Caddy config: open log
// files, senders and their queues, a receiver's connections, the replay
// journal. Each is a value in a Pool, keyed (by path, address or
// WriterKey), shared by every loaded config that uses its key, and
// counted: each config takes a Lease when it is provisioned and returns
// it when its context ends (or from Cleanup). The last release deletes
// the key and destructs the value; whatever is still held when Caddy
// exits is destructed by one exit hook.
//
// # Why this exists
//
// On a reload Caddy provisions and starts the new config before it stops
// the old one, so for a while two configs use the same file, socket or
// queue; state that belongs to one config's module would be closed under
// the other, or opened twice.
//
// Log writers are the sharpest case. Caddy v2.11 pools them by WriterKey
// in a caddy.UsagePool (logging.go, Logging.openWriter): the first
// config that names a key calls OpenWriter, later configs get the same
// io.WriteCloser back. Caddy means to release them: Logging.openLogs
// registers closeLogs, which would Delete each key from the pool (and
// Close the writer when its count reaches zero), with Context.OnCancel.
// But openLogs receives its Context by value, so the callback is added
// to a copy, and the cancel function made by NewContextWithCause runs
// only the parent's callbacks anyway: closeLogs never runs. So Caddy
// never deletes a pooled writer's key and never calls Close on a
// pooled writer, neither on reload, nor when a config fails to load, nor
// when Caddy stops or exits. What Caddy does do on unload and at exit is
// cancel the config's context and call Cleanup on every module the
// config provisioned (Stop first, for apps); OnExit hooks run after that.
//
// Writers therefore cannot own their state: the writer Caddy holds is a
// handle that finds its key's value in a Pool (and may outlive it, as
// Caddy keeps it forever), each config leases the key from Provision
// until its context ends, and the exit hook flushes and closes what is
// left, since nothing else would before the process ends.
// TestCaddyClosesNoPooledWriter fails the day Caddy closes them itself;
// the exit drain and the handles' indirection can then be simplified.
//
// A Pool is a caddy.UsagePool (which counts the uses of each key) plus
// what it lacks for this: destruction outside the pool's locks, a key
// whose value is being destructed is constructed again only once that
// has finished (a file or spool is never open twice), values that can be
// looked up without counting a use, and the drain on exit.
package lifecycle

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Pool holds keyed values shared by the configs that use them. The zero
// value is not usable; call NewPool.
type Pool[V caddy.Destructor] struct {
	uses *caddy.UsagePool // key → *entry, counting the leases

	// mu serializes acquiring and releasing, so that deciding that a
	// use is the last and marking its value as ending are one step.
	mu     sync.Mutex
	live   map[string]*entry[V] // keys with leases
	ending map[string]*entry[V] // keys whose value is being destructed
}

type entry[V caddy.Destructor] struct {
	v    V
	once sync.Once
	err  error
	done chan struct{} // closed once v is destructed
}

// Destruct does nothing: the UsagePool calls it when the count reaches
// zero, with the pool's lock held; the Pool destructs the value itself,
// once, after letting go of its locks (see end).
func (*entry[V]) Destruct() error { return nil }

func (e *entry[V]) end() error {
	e.once.Do(func() {
		e.err = e.v.Destruct()
		close(e.done)
	})
	<-e.done
	return e.err
}

// NewPool returns an empty pool whose values are destructed at exit if
// their configs have not released them by then.
func NewPool[V caddy.Destructor]() *Pool[V] {
	p := &Pool[V]{
		uses:   caddy.NewUsagePool(),
		live:   map[string]*entry[V]{},
		ending: map[string]*entry[V]{},
	}
	registry.Lock()
	registry.pools = append(registry.pools, p)
	registry.Unlock()
	return p
}

// Acquire counts one more use of key and returns its value, made by
// construct if the key has none. If the key's previous value is still
// being destructed, it waits for that to finish first.
func (p *Pool[V]) Acquire(key string, construct func() (V, error)) (V, error) {
	exitHook()
	for {
		p.mu.Lock()
		if e := p.ending[key]; e != nil {
			p.mu.Unlock()
			<-e.done
			continue
		}
		val, _, err := p.uses.LoadOrNew(key, func() (caddy.Destructor, error) {
			v, err := construct()
			if err != nil {
				return nil, err
			}
			return &entry[V]{v: v, done: make(chan struct{})}, nil
		})
		if err != nil {
			p.mu.Unlock()
			var zero V
			return zero, err
		}
		e := val.(*entry[V])
		p.live[key] = e
		p.mu.Unlock()
		return e.v, nil
	}
}

// AcquireUntil is Acquire, with the use released when ctx ends (the
// config of ctx is unloaded, fails to load, or Caddy stops).
func (p *Pool[V]) AcquireUntil(ctx context.Context, key string, construct func() (V, error)) (V, error) {
	v, err := p.Acquire(key, construct)
	if err == nil {
		context.AfterFunc(ctx, func() {
			if err := p.Release(key); err != nil {
				caddy.Log().Named("lifecycle").Error("closing what no config uses any more", zap.String("key", key), zap.Error(err))
			}
		})
	}
	return v, err
}

// Release counts one use of key less. The last one deletes the key and
// destructs its value, returning the value's error; it returns when the
// value is destructed. Releasing a key that has no use does nothing;
// releasing it more often than it was acquired while it is in use
// panics, as in a caddy.UsagePool.
func (p *Pool[V]) Release(key string) error {
	p.mu.Lock()
	e := p.live[key]
	deleted, _ := p.uses.Delete(key)
	if !deleted {
		p.mu.Unlock()
		return nil
	}
	delete(p.live, key)
	p.ending[key] = e
	p.mu.Unlock()
	err := e.end()
	p.mu.Lock()
	if p.ending[key] == e {
		delete(p.ending, key)
	}
	p.mu.Unlock()
	return err
}

// Load returns the value of key without counting a use, if some config
// uses the key. A handle that Caddy keeps after the configs that used it
// are gone finds its key's current value this way.
func (p *Pool[V]) Load(key string) (V, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.live[key]
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Len returns how many keys have a value, in use or being destructed.
func (p *Pool[V]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.ending)
	p.uses.Range(func(any, any) bool { n++; return true })
	return n
}

// Drain destructs every value still held, in parallel, and waits for
// those already being destructed: the process is exiting. Releases
// after it find their value destructed already; the pool is not meant
// to hand out values after it.
func (p *Pool[V]) Drain() {
	p.mu.Lock()
	all := make([]*entry[V], 0, len(p.live)+len(p.ending))
	for _, e := range p.live {
		all = append(all, e)
	}
	for _, e := range p.ending {
		all = append(all, e)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Go(func() {
			if err := e.end(); err != nil {
				caddy.Log().Named("lifecycle").Error("closing at exit", zap.Error(err))
			}
		})
	}
	wg.Wait()
}

type drainer interface{ Drain() }

var (
	hookOnce sync.Once
	registry struct {
		sync.Mutex
		pools []drainer
	}
	// background counts the goroutines started by Go.
	background sync.WaitGroup
)

func exitHook() {
	hookOnce.Do(func() { caddy.OnExit(func(context.Context) { drainAll() }) })
}

// Go runs f in a goroutine that the exit drain waits for: work that
// outlives the config which started it, such as a sender of its own
// finishing an entry logged after its config was unloaded.
func Go(f func()) {
	exitHook()
	background.Go(f)
}

// drainAll drains every pool, in parallel, and waits for the goroutines
// started by Go: Caddy is exiting, and no config will release what it
// holds.
func drainAll() {
	registry.Lock()
	pools := append([]drainer(nil), registry.pools...)
	registry.Unlock()
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Go(p.Drain)
	}
	wg.Wait()
	background.Wait()
}
