package msnp

import (
	"strconv"
	"strings"
)

const redacted = "<redacted>"

// Redact renders a command for logs with its secrets replaced: the
// Passport ticket in USR … TWN/SSO S, switchboard cookies in XFR, RNG and
// the switchboard's USR and ANS, and the MSPAuth (and any ticket) lines of
// payloads. Payloads are shown quoted, cut to 512 bytes.
func Redact(c *Command) string {
	if c == nil {
		return "<nil>"
	}
	args := append([]string(nil), c.Args...)
	hide := func(i int) {
		if i < len(args) {
			args[i] = redacted
		}
	}
	switch c.Name {
	case "USR":
		switch arg(args, 1) {
		case "TWN", "SSO", "MD5", "SHA":
			if arg(args, 2) == "S" || arg(args, 1) == "SHA" {
				for i := 3; i < len(args); i++ {
					hide(i)
				}
			}
		case "OK":
		default: // switchboard: USR trid email cookie
			hide(2)
		}
	case "XFR":
		if arg(args, 3) == "CKI" {
			hide(4)
		}
	case "RNG":
		hide(3)
	case "ANS":
		if arg(args, 1) != "OK" {
			hide(2)
		}
	}
	var b strings.Builder
	b.WriteString(c.Name)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	if c.Payload != nil {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(len(c.Payload)))
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(cut512(redactPayload(string(c.Payload)))))
	}
	return b.String()
}

func arg(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

// redactPayload hides header lines that carry credentials.
func redactPayload(p string) string {
	lines := strings.Split(p, "\n")
	for i, l := range lines {
		k, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "mspauth", "authorization", "ticket", "cookie", "set-cookie", "mspprof", "mspsec":
			cr := strings.HasSuffix(l, "\r")
			lines[i] = k + ": " + redacted
			if cr {
				lines[i] += "\r"
			}
		}
	}
	return strings.Join(lines, "\n")
}

func cut512(s string) string {
	if len(s) > 512 {
		return s[:512] + "…"
	}
	return s
}
