package bridge

import (
	"errors"
	"sync"
	"time"
)

// ErrRateLimited is returned when a user asks for too much too fast. One
// user must not be able to get the shared MSN server to ban the bridge.
var ErrRateLimited = errors.New("you are doing that too often; wait a little and try again")

// limiter is a token bucket per user and kind of action.
type limiter struct {
	mu      sync.Mutex
	rate    time.Duration // one token per rate
	burst   int
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate time.Duration, burst int) *limiter {
	return &limiter{rate: rate, burst: burst, buckets: map[string]*bucket{}, now: time.Now}
}

// allow takes a token for key, or says there is none.
func (l *limiter) allow(key string) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(l.burst), last: now}
		l.buckets[key] = b
	}
	b.tokens += float64(now.Sub(b.last)) / float64(l.rate)
	if b.tokens > float64(l.burst) {
		b.tokens = float64(l.burst)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	// Full buckets carry no information: forget them so the map stays
	// the size of the users who are actually busy.
	if len(l.buckets) > 10000 {
		for k, v := range l.buckets {
			if v.tokens+float64(now.Sub(v.last))/float64(l.rate) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
	}
	return true
}
