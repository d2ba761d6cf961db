package bridge

import "time"

// AvatarFetches is how many display-picture fetches the core started, for
// tests that check a picture is fetched once.
func (b *Bridge) AvatarFetches() int64 { return b.avatars.fetches.Load() }

// AvatarBackoffs is how many contacts' pictures are backed off after a
// failed fetch.
func (b *Bridge) AvatarBackoffs() int {
	b.avatars.mu.Lock()
	defer b.avatars.mu.Unlock()
	return len(b.avatars.failures)
}

// SetAvatarBackoff sets the first wait after a failed picture fetch.
func (b *Bridge) SetAvatarBackoff(d time.Duration) {
	b.avatars.mu.Lock()
	defer b.avatars.mu.Unlock()
	b.avatars.backoff = d
}
