package lifecycle

import (
	"runtime"
	"testing"
	"time"
)

type kept struct{ name string }

func TestKeptForgetsCollected(t *testing.T) {
	var k Kept[kept]
	swapTwice(t, &k) // then Caddy lets go of the writers
	deadline := time.Now().Add(5 * time.Second)
	for k.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d keys left after their values were collected", k.Len())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if k.Load("x") != nil {
		t.Fatal("a collected value is found")
	}
}

func swapTwice(t *testing.T, k *Kept[kept]) {
	a := &kept{name: "a"}
	if old := k.Swap("x", a); old != nil {
		t.Fatalf("a new key had %v", old)
	}
	if k.Load("x") != a {
		t.Fatal("Load does not find the value")
	}
	b := &kept{name: "b"}
	if old := k.Swap("x", b); old != a {
		t.Fatalf("Swap returned %v, want a", old)
	}
}
