package matrix

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/msnbridge/msnbridge/bridge"
)

// Command is one parsed bot command.
type Command struct {
	Name     string        // e.g. "login"; see commandHelp
	Passport string        // for commands that name a contact or account
	Text     string        // for psm and name
	Status   bridge.Status // for presence
}

// commandHelp lists the commands in the order help shows them.
var commandHelp = []struct{ usage, what string }{
	{"help", "show this list"},
	{"login PASSPORT", "sign in to MSN; I ask for the password next and delete it from the room at once"},
	{"logout", "sign out of MSN and forget the password"},
	{"relogin", "sign in again with the stored password"},
	{"status (or ping)", "show whether you are signed in"},
	{"contacts", "list your MSN contacts"},
	{"add PASSPORT", "add a contact"},
	{"remove PASSPORT", "remove a contact"},
	{"block PASSPORT", "block a contact"},
	{"unblock PASSPORT", "unblock a contact"},
	{"presence online|busy|away|brb|phone|lunch|invisible", "set your MSN status"},
	{"psm TEXT", "set your personal message (psm alone clears it)"},
	{"name TEXT", "set your MSN display name"},
	{"chat PASSPORT", "open a chat room with a contact"},
	{"cancel", "stop waiting for a password"},
	{"!invite PASSPORT", "in a chat room: invite a contact into the conversation"},
	{"!nudge", "in a chat room: send a nudge"},
}

func helpText() string {
	var sb strings.Builder
	sb.WriteString("Commands (in this room):\n")
	for _, c := range commandHelp {
		fmt.Fprintf(&sb, "• %s — %s\n", c.usage, c.what)
	}
	return strings.TrimRight(sb.String(), "\n")
}

var presenceWords = map[string]bridge.Status{
	"online":    bridge.StatusOnline,
	"busy":      bridge.StatusBusy,
	"away":      bridge.StatusAway,
	"brb":       bridge.StatusBRB,
	"phone":     bridge.StatusPhone,
	"lunch":     bridge.StatusLunch,
	"invisible": bridge.StatusInvisible,
}

// ErrUnknownCommand is returned for a word the bot does not know.
var ErrUnknownCommand = errors.New("unknown command")

// maxTextArg bounds psm and name arguments (MSN limits both well below).
const maxTextArg = 1024

// ParseCommand parses one line typed to the bot. A leading '!' is
// accepted and the command word is case-insensitive. Errors are written
// for the user to read.
func ParseCommand(line string) (Command, error) {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "!")
	word, rest, _ := strings.Cut(line, " ")
	word = strings.ToLower(strings.TrimSpace(word))
	rest = strings.TrimSpace(rest)
	cmd := Command{Name: word}
	switch word {
	case "":
		return Command{}, errors.New("empty command; say help for the list")
	case "help", "logout", "relogin", "contacts", "cancel", "nudge":
		if rest != "" {
			return Command{}, fmt.Errorf("%s takes no arguments", word)
		}
	case "status", "ping":
		if rest != "" {
			return Command{}, fmt.Errorf("%s takes no arguments", word)
		}
		cmd.Name = "status"
	case "login", "add", "remove", "block", "unblock", "chat", "invite":
		p, err := parsePassport(rest)
		if err != nil {
			return Command{}, fmt.Errorf("%s needs a passport (an e-mail address like alice@example.com): %w", word, err)
		}
		cmd.Passport = p
	case "presence":
		st, ok := presenceWords[strings.ToLower(rest)]
		if !ok {
			return Command{}, errors.New("presence needs one of: online, busy, away, brb, phone, lunch, invisible")
		}
		cmd.Status = st
	case "psm", "name":
		if !utf8.ValidString(rest) {
			return Command{}, errors.New("the text is not valid UTF-8")
		}
		if len(rest) > maxTextArg {
			return Command{}, fmt.Errorf("the text is too long (at most %d bytes)", maxTextArg)
		}
		if word == "name" && rest == "" {
			return Command{}, errors.New("name needs the new display name")
		}
		cmd.Text = rest
	default:
		return Command{}, fmt.Errorf("%w %q; say help for the list", ErrUnknownCommand, word)
	}
	return cmd, nil
}

// ParsePortalCommand recognises the commands allowed inside a chat room:
// "!nudge" and "!invite PASSPORT". Anything else (ok false) is a message
// for the contact.
func ParsePortalCommand(text string) (cmd Command, ok bool, err error) {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "!") {
		return Command{}, false, nil
	}
	word, _, _ := strings.Cut(strings.TrimPrefix(t, "!"), " ")
	switch strings.ToLower(word) {
	case "nudge", "invite":
		cmd, err = ParseCommand(t)
		return cmd, true, err
	}
	return Command{}, false, nil
}

func parsePassport(s string) (string, error) {
	if s == "" {
		return "", errors.New("none given")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "", errors.New("it contains spaces")
	}
	if len(s) > maxPassportLen {
		return "", fmt.Errorf("it is longer than %d characters", maxPassportLen)
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || !strings.Contains(domain, ".") {
		return "", fmt.Errorf("%q is not an e-mail address", s)
	}
	if !utf8.ValidString(s) {
		return "", errors.New("it is not valid UTF-8")
	}
	return s, nil
}
