package msnp

import (
	"io"
	"strings"
	"testing"
)

// Notification-server traffic as the transcripts have it
// (/work/shared/msnp/transcripts/twn_msnp12.txt and sso_msnp18.txt): the
// lines a bridge reads most, presence and personal messages, and the
// Hotmail notifications every login gets.
var benchCommands = []struct {
	name string
	wire string
}{
	{"ILN", "ILN 6 NLN alice@example.com alice@example.com 0 %3Cmsnobj%2F%3E\r\n"},
	{"NLN", "NLN NLN 1:alice@example.com Alice 2788999212:48 0\r\n"},
	{"LST", "LST N=bob@example.com F=bob@example.com C=fe264928-45f7-4051-a212-f7c2f2fd477e 11 1 \r\n"},
	{"UBX", "UBX 1:alice@example.com 430\r\n" +
		`<Data><PSM>psm of alice@example.com</PSM><CurrentMedia></CurrentMedia><MachineGuid>{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}</MachineGuid><DDP></DDP><SignatureSound></SignatureSound><Scene></Scene><ColorScheme></ColorScheme><EndpointData id="{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"><Capabilities>2788999212:48</Capabilities></EndpointData><PrivateEndpointData id="{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"></PrivateEndpointData></Data>`},
	{"MSGHotmail", "MSG Hotmail Hotmail 195\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinitialmdatanotification; charset=UTF-8\r\n\r\nMail-Data: <MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q></MD>\r\n"},
	{"SBMSG", "MSG alice@example.com alice@example.com 137\r\n" + benchSBPayload},
}

const benchSBPayload = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\nHello Bob via TWN/MSNP12"

// loopReader replays data forever without allocating, so that a benchmark
// measures the Reader and not its source.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], l.data[l.off:])
		n += k
		l.off = (l.off + k) % len(l.data)
	}
	return n, nil
}

// benchStream is every benchmark command once, in order: a mix shaped like
// a login's presence burst.
func benchStream() string {
	var s string
	for _, c := range benchCommands {
		s += c.wire
	}
	return s
}

func reportCommands(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

// benchRead reads commands from wire replayed forever; b.N counts commands
// and the bytes per op are wire's mean per command.
func benchRead(b *testing.B, wire string, read func(*Reader, *Command) error) {
	r := NewReader(&loopReader{data: []byte(wire)})
	var c Command
	// One read outside the timer sizes c.Args, as a long-lived reader loop
	// would have it after its first command.
	if err := read(r, &c); err != nil {
		b.Fatal(err)
	}
	n := 0
	for r2 := NewReader(strings.NewReader(wire)); r2.Read(new(Command)) == nil; {
		n++
	}
	b.SetBytes(int64(len(wire) / n))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := read(r, &c); err != nil {
			b.Fatal(err)
		}
	}
	reportCommands(b)
}

func BenchmarkReadCommand(b *testing.B) {
	read := func(r *Reader, c *Command) error {
		x, err := r.ReadCommand()
		if err == nil {
			*c = *x
		}
		return err
	}
	for _, bc := range benchCommands {
		b.Run(bc.name, func(b *testing.B) { benchRead(b, bc.wire, read) })
	}
}

func BenchmarkRead(b *testing.B) {
	read := (*Reader).Read
	for _, bc := range benchCommands {
		b.Run(bc.name, func(b *testing.B) { benchRead(b, bc.wire, read) })
	}
}

func BenchmarkReadInto(b *testing.B) {
	read := (*Reader).ReadInto
	for _, bc := range benchCommands {
		b.Run(bc.name, func(b *testing.B) { benchRead(b, bc.wire, read) })
	}
}

// BenchmarkReadMix reads the whole mix; b.N counts commands.
func BenchmarkReadMix(b *testing.B) {
	b.Run("ReadCommand", func(b *testing.B) {
		benchRead(b, benchStream(), func(r *Reader, c *Command) error {
			x, err := r.ReadCommand()
			if err == nil {
				*c = *x
			}
			return err
		})
	})
	b.Run("Read", func(b *testing.B) { benchRead(b, benchStream(), (*Reader).Read) })
	b.Run("ReadInto", func(b *testing.B) { benchRead(b, benchStream(), (*Reader).ReadInto) })
}

func BenchmarkWriteCommand(b *testing.B) {
	for _, bc := range benchCommands {
		b.Run(bc.name, func(b *testing.B) {
			c, err := NewReader(&loopReader{data: []byte(bc.wire)}).ReadCommand()
			if err != nil {
				b.Fatal(err)
			}
			w := NewWriter(io.Discard)
			b.SetBytes(int64(len(bc.wire)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.WriteCommand(c); err != nil {
					b.Fatal(err)
				}
			}
			reportCommands(b)
		})
	}
}
