package config

import "time"

// DefaultProtocols is the dialect order offered when msn.protocols is not
// set: MSNP18 first (the only one that coexists with the user's own WLM 2009
// session), then the older ones down to MSNP8.
var DefaultProtocols = []string{"MSNP18", "MSNP15", "MSNP12", "MSNP11", "MSNP8"}

// KnownProtocols are the dialects the bridge can speak: MSNP8-12 (Tweener)
// and MSNP15-18 (SSO).
var KnownProtocols = []string{
	"MSNP8", "MSNP9", "MSNP10", "MSNP11", "MSNP12",
	"MSNP15", "MSNP16", "MSNP17", "MSNP18",
}

// Components are the names that logging.components may set a level for.
var Components = []string{"msnp", "matrix", "xmpp", "bridge", "store"}

// Defaults returns a configuration with every default filled in. The hosts
// are Escargot's, the MSN revival server the bridge was written against;
// all of them can be changed.
func Defaults() *Config {
	return &Config{
		MSN: MSN{
			Server:      "ds.escargot.nina.chat:1863",
			NexusURL:    "https://msnmsgr.escargot.chat/rdr/pprdr.asp",
			RSTURL:      "https://m1.escargot.chat/RST.srf",
			SOAPBaseURL: "https://m1.escargot.chat",
			Protocols:   append([]string(nil), DefaultProtocols...),
			Client: MSNClient{
				LocaleID: "0x0409",
				OSType:   "winnt",
				OSVer:    "6.0",
				Arch:     "i386",
				Name:     "MSNMSGR",
				Version:  "14.0.8117.0416",
				Brand:    "msmsgs",
			},
			DialTimeout: 30 * time.Second,
		},
		Matrix: Matrix{
			Listen:         "127.0.0.1:29350",
			ID:             "msnbridge",
			BotLocalpart:   "msnbot",
			BotDisplayname: "MSN bridge bot",
			GhostTemplate:  "msn_{{.}}",
		},
		XMPP: XMPP{
			Server: "127.0.0.1:5347",
		},
		Database: Database{
			Type:         "sqlite3",
			URI:          "file:msnbridge.db?_txlock=immediate",
			MaxOpenConns: 5,
			MaxIdleConns: 2,
		},
		Logging: Logging{
			Level:      "info",
			Format:     "console",
			Components: map[string]string{},
		},
		Bridge: Bridge{
			Permissions: map[string]string{},
			Files: Files{
				Dir:       "media",
				MaxSize:   100 * MiB,
				Retention: 7 * 24 * time.Hour,
			},
			DisplayPictures: DisplayPictures{
				Enabled: true,
				MaxSize: 1 * MiB,
			},
		},
		HTTP: HTTP{
			Metrics: true,
		},
	}
}
