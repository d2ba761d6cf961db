package matrix

import (
	"regexp"

	"maunium.net/go/mautrix/appservice"

	"github.com/msnbridge/msnbridge/bridge/config"
)

// NewRegistration builds the appservice registration the homeserver needs
// from the bridge's Matrix config: the tokens, the bot, and an exclusive
// namespace over every ghost. It asks for ephemeral events (typing) in
// both the stable and the MSC2409 spelling; homeservers that do not push
// them (Dendrite) ignore the flags, and the bridge falls back to /sync.
func NewRegistration(cfg config.Matrix) *appservice.Registration {
	reg := &appservice.Registration{
		ID:                  cfg.ID,
		URL:                 cfg.PublicURL,
		AppToken:            cfg.ASToken,
		ServerToken:         cfg.HSToken,
		SenderLocalpart:     cfg.BotLocalpart,
		RateLimited:         new(false),
		SoruEphemeralEvents: true,
		EphemeralEvents:     true,
	}
	namer, err := newGhostNamer(cfg.GhostTemplate, cfg.Domain)
	if err == nil {
		reg.Namespaces.UserIDs.Register(regexp.MustCompile(namer.userRegex()), true)
	}
	bot := "^@" + regexp.QuoteMeta(cfg.BotLocalpart) + ":" + regexp.QuoteMeta(cfg.Domain) + "$"
	reg.Namespaces.UserIDs.Register(regexp.MustCompile(bot), true)
	return reg
}
