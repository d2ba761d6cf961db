package msnp

import "testing"

// The login profile (the longest header block a client reads) and a
// switchboard text message, from the transcripts.
var benchMessages = []struct {
	name    string
	payload string
}{
	{"SBText", benchSBPayload},
	{"Profile", "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\nLoginTime: 1795546065\r\nEmailEnabled: 0\r\nMemberIdHigh: 826228412\r\nMemberIdLow: 503124307\r\nlang_preference: 1033\r\npreferredEmail:\r\ncountry:\r\nPostalCode:\r\nGender:\r\nKid: 0\r\nAge:\r\nBDayPre:\r\nBirthday:\r\nWallet:\r\nFlags: 536872513\r\nsid: 507\r\nMSPAuth: 79bfce8e4c2bc7bff894Y6+H31sTUOFkqjNTDYqAAFLr5Ote7BMrMnUIzpg860jh084QMgs5djRQLLQP0TVOFkKdWDwAJdEWcfsI9YL8otN9kSfhTaPHR1njHmG0H98O2NE/Ck6zrog3UJFmYlCnHidZk1g3AzUNVXmjZoyMSyVvoHLjQSzoGRpgHg3hHdi7zrFhcYKWD8XeNYdoz9wfA2YAAAgZIgF9kFvsy2AC0Fl/ezc/fSo6YgB9TwmXyoK0wm0F9nz5EfhHQLu2xxgsvMOiXUSFSpN1\r\n\r\n"},
}

func BenchmarkParseMessage(b *testing.B) {
	for _, bm := range benchMessages {
		b.Run(bm.name, func(b *testing.B) {
			p := []byte(bm.payload)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := ParseMessage(p); err != nil {
					b.Fatal(err)
				}
			}
			reportCommands(b)
		})
	}
}

func BenchmarkMessageBytes(b *testing.B) {
	for _, bm := range benchMessages {
		b.Run(bm.name, func(b *testing.B) {
			m, err := ParseMessage([]byte(bm.payload))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bm.payload)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = m.Bytes()
			}
			reportCommands(b)
		})
	}
}

// BenchmarkReadSBText is the switchboard receive path: read the MSG, parse
// its MIME headers, classify it as text.
func BenchmarkReadSBText(b *testing.B) {
	wire := "MSG alice@example.com alice@example.com 137\r\n" + benchSBPayload
	r := NewReader(&loopReader{data: []byte(wire)})
	var c Command
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := r.Read(&c); err != nil {
			b.Fatal(err)
		}
		m, err := ParseMessage(c.Payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := m.Classify().(*TextMessage); !ok {
			b.Fatal("not text")
		}
	}
	reportCommands(b)
}
