package bridge

import (
	"context"
	"errors"
)

// TEMPORARY: the media and display-picture half of the Core contract,
// filled in by the issue 11 work (bridge: media store, avatar cache).
var errMediaPending = errors.New("bridge: files and display pictures are not wired yet")

func (b *Bridge) SendFile(ctx context.Context, user UserID, id PortalID, f OutgoingFile) error {
	return errMediaPending
}

func (b *Bridge) OpenMedia(ctx context.Context, id MediaID) (*Media, error) {
	return nil, ErrNoSuchMedia
}

func (b *Bridge) Avatar(ctx context.Context, hash string) ([]byte, string, error) {
	return nil, "", ErrNoSuchMedia
}

func (b *Bridge) SetDisplayPicture(ctx context.Context, user UserID, image []byte) error {
	return errMediaPending
}

func (b *Bridge) FrontendValue(ctx context.Context, frontend, key string) (string, error) {
	return "", errMediaPending
}

func (b *Bridge) SetFrontendValue(ctx context.Context, frontend, key, value string) error {
	return errMediaPending
}
