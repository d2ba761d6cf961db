package bridge

// AvatarFetches is how many display-picture fetches the core started, for
// tests that check a picture is fetched once.
func (b *Bridge) AvatarFetches() int64 { return b.avatars.fetches.Load() }
