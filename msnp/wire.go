package msnp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Default limits for a Reader. A revival server's longest line is a
// contact-list line with a 387-character friendly name escaped three bytes
// a character; its largest payload is a notification-server MSG or an
// address-book notification of a few kilobytes.
const (
	DefaultMaxLineLength  = 16 << 10
	DefaultMaxPayloadSize = 1 << 20
)

// SwitchboardMaxMessage is the largest MSG payload, in bytes, that a
// revival server relays on a switchboard: a longer one makes Escargot close
// the connection (FACTS.md §0, §6).
const SwitchboardMaxMessage = 1664

// Command is one MSNP command: a name, its arguments and, for payload
// commands, the bytes that followed the line.
//
// Args holds every token after the name exactly as it was on the wire
// (still URL-escaped), the transaction id included when the command carries
// one: use TrID to read it. For a payload command the length token is not
// in Args; the Writer adds it from len(Payload) and the Reader removes it.
type Command struct {
	Name    string
	Args    []string
	Payload []byte // nil when the command carries no payload
}

// NewCommand returns a command whose first argument is the transaction id.
func NewCommand(name string, trid uint32, args ...string) *Command {
	a := make([]string, 0, len(args)+1)
	a = append(a, strconv.FormatUint(uint64(trid), 10))
	return &Command{Name: name, Args: append(a, args...)}
}

// noTrID lists server-sent commands whose first argument is never a
// transaction id even when it looks like a number (QNG's seconds, LSG's
// MSNP8 group id, RNG's numeric session id on old servers).
var noTrID = map[string]bool{
	"NLN": true, "FLN": true, "UBX": true, "UBN": true, "UBM": true,
	"RNG": true, "NOT": true, "IPG": true, "JOI": true, "BYE": true,
	"QNG": true, "LST": true, "LSG": true, "BPR": true, "OUT": true,
}

// TrID returns the command's transaction id, if it carries one.
func (c *Command) TrID() (uint32, bool) {
	if len(c.Args) == 0 || noTrID[c.Name] {
		return 0, false
	}
	return parseUint32(c.Args[0])
}

// Arg returns the i-th argument, or "" when there are fewer.
func (c *Command) Arg(i int) string {
	if i < 0 || i >= len(c.Args) {
		return ""
	}
	return c.Args[i]
}

// IsError reports whether the command is a three-digit server error.
func (c *Command) IsError() bool { return isErrorCode(c.Name) }

// Err returns the command as a *ServerError when it is an error reply, or nil.
func (c *Command) Err() error {
	if !c.IsError() {
		return nil
	}
	code, _ := strconv.Atoi(c.Name)
	trid, _ := c.TrID()
	return &ServerError{Code: ErrorCode(code), TrID: trid}
}

// String renders the command line without its payload, for logs and tests.
// It does not redact: use Redact for anything that may reach a log.
func (c *Command) String() string {
	var b strings.Builder
	b.WriteString(c.Name)
	for _, a := range c.Args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	if c.Payload != nil {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(len(c.Payload)))
	}
	return b.String()
}

// payloadMinArgs lists the commands that may carry a payload and the least
// number of arguments (length included) with which they do. QRY needs three
// because the server's reply "QRY trid" has none; the others carry a payload
// whenever their last token is a base-10 length.
var payloadMinArgs = map[string]int{
	"MSG": 3, "NOT": 1, "IPG": 1, "UBX": 2, "UBN": 2, "UBM": 2, "UUX": 2,
	"GCF": 2, "ADL": 2, "RML": 2, "FQY": 2, "QRY": 3, "UUN": 3, "UUM": 3,
	"NFY": 2, "SDG": 2, "PUT": 2, "DEL": 2, "VAS": 2, "SDC": 2,
}

// HasPayload reports whether a line with this name and these tokens (the
// length included, as the last one) is followed by a payload.
func hasPayload(name string, args []string) bool {
	min, ok := payloadMinArgs[name]
	if !ok {
		// An MSNP13+ error may carry a payload: "241 trid len".
		if !isErrorCode(name) {
			return false
		}
		min = 2
	}
	if len(args) < min {
		return false
	}
	_, ok = parseUint32(args[len(args)-1])
	return ok
}

// ProtocolError is a violation of the wire format by the peer. The
// connection it came from is no longer in a known state and must be closed.
type ProtocolError struct {
	Line string // the offending line, cut to 80 bytes; payloads are not quoted
	Err  error
}

func (e *ProtocolError) Error() string {
	if e.Line == "" {
		return "msnp: protocol error: " + e.Err.Error()
	}
	return fmt.Sprintf("msnp: protocol error: %v (line %q)", e.Err, e.Line)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// Errors wrapped by ProtocolError.
var (
	ErrLineTooLong     = errors.New("line too long")
	ErrPayloadTooLarge = errors.New("payload too large")
	ErrMalformedLine   = errors.New("malformed command line")
)

// Reader reads commands from an MSNP connection.
type Reader struct {
	r              *bufio.Reader
	line           []byte // ReadInto's reused line buffer
	MaxLineLength  int    // 0 means DefaultMaxLineLength
	MaxPayloadSize int    // 0 means DefaultMaxPayloadSize
}

// NewReader returns a Reader with the default limits.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 4096)}
}

// ReadCommand reads the next command and its payload. A line or payload
// over the limits, or a line that is not a command, is a *ProtocolError;
// the peer closing the connection between commands is io.EOF.
func (r *Reader) ReadCommand() (*Command, error) {
	c := new(Command)
	if err := r.Read(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Read reads the next command into c, reusing c.Args' storage. The command's
// strings share one allocation: the line itself.
func (r *Reader) Read(c *Command) error {
	line, err := r.readLine()
	if err != nil {
		return err
	}
	return r.parse(c, string(line))
}

// ReadInto is Read without the line's allocation, for hot loops that look
// at a command and let go of it: c.Name and c.Args alias a buffer the Reader
// reuses, so they are valid only until the next Read, ReadInto or
// ReadCommand on r. Whatever must outlive that (a contact's address kept in
// a map, an argument handed to another goroutine) must be copied with
// strings.Clone first. c.Payload is freshly allocated as with Read and may
// be kept. Errors never alias the buffer.
func (r *Reader) ReadInto(c *Command) error {
	line, err := r.readLine()
	if err != nil {
		return err
	}
	// The line is copied out of the bufio.Reader's buffer because reading
	// the payload may slide that buffer's contents over it.
	r.line = append(r.line[:0], line...)
	if len(r.line) == 0 {
		return r.parse(c, "")
	}
	return r.parse(c, unsafe.String(&r.line[0], len(r.line)))
}

// parse tokenises line into c and reads the payload it announces. Errors
// copy what they quote of the line, which may alias ReadInto's buffer.
func (r *Reader) parse(c *Command, line string) error {
	// Tokenise on single spaces, tolerating runs of blanks and a trailing
	// blank (Escargot sends "LST ... 11 1 ").
	c.Name, c.Args, c.Payload = "", c.Args[:0], nil
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if j > i {
			if c.Name == "" {
				c.Name = line[i:j]
			} else {
				c.Args = append(c.Args, line[i:j])
			}
		}
		i = j
	}
	if c.Name == "" || !validName(c.Name) {
		return &ProtocolError{Line: strings.Clone(cut(line)), Err: ErrMalformedLine}
	}
	if !hasPayload(c.Name, c.Args) {
		return nil
	}
	n, _ := parseUint32(c.Args[len(c.Args)-1])
	max := r.MaxPayloadSize
	if max <= 0 {
		max = DefaultMaxPayloadSize
	}
	if int64(n) > int64(max) {
		return &ProtocolError{Line: strings.Clone(cut(line)), Err: fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, n, max)}
	}
	c.Args = c.Args[:len(c.Args)-1]
	c.Payload = make([]byte, n)
	if _, err := io.ReadFull(r.r, c.Payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("msnp: reading %d-byte %s payload: %w", n, c.Name, err)
	}
	return nil
}

// readLine reads one CRLF- (or LF-) terminated line without its terminator.
// The slice is valid until the next read from r.r.
func (r *Reader) readLine() ([]byte, error) {
	max := r.MaxLineLength
	if max <= 0 {
		max = DefaultMaxLineLength
	}
	var long []byte
	for {
		frag, err := r.r.ReadSlice('\n')
		if len(long)+len(frag) > max+2 { // +2 for the CRLF
			return nil, &ProtocolError{Line: cut(string(append(long, frag...))), Err: fmt.Errorf("%w: over %d bytes", ErrLineTooLong, max)}
		}
		if err == nil || err == bufio.ErrBufferFull {
			if long == nil && err == nil {
				return trimEOL(frag), nil
			}
			long = append(long, frag...)
			if err == nil {
				return trimEOL(long), nil
			}
			continue
		}
		if len(long)+len(frag) == 0 && err == io.EOF {
			return nil, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("msnp: reading line: %w", err)
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

func cut(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// validName accepts upper-case three-letter commands and three-digit errors.
func validName(s string) bool {
	if len(s) != 3 {
		return false
	}
	if isErrorCode(s) {
		return true
	}
	for i := 0; i < 3; i++ {
		if (s[i] < 'A' || s[i] > 'Z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

func isErrorCode(s string) bool {
	return len(s) == 3 && s[0] >= '1' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

func parseUint32(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	if n > 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// Writer writes commands to an MSNP connection. It is safe for concurrent
// use: each command, payload included, is written whole.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteCommand writes c. When c.Payload is non-nil its byte length is
// appended as the last argument and the payload follows the line.
// Arguments must already be escaped (see Escape); an argument holding a
// blank, CR or LF is refused, since it would change the command's shape.
func (w *Writer) WriteCommand(c *Command) error {
	if !validName(c.Name) {
		return fmt.Errorf("msnp: invalid command name %q", c.Name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b := append(w.buf[:0], c.Name...)
	for _, a := range c.Args {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			return fmt.Errorf("msnp: %s: argument %q is empty or holds a blank or line break", c.Name, a)
		}
		b = append(b, ' ')
		b = append(b, a...)
	}
	if c.Payload != nil {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(c.Payload)), 10)
	}
	b = append(b, '\r', '\n')
	b = append(b, c.Payload...)
	w.buf = b
	_, err := w.w.Write(b)
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not pin one large payload's buffer
	}
	return err
}

// Escape URL-encodes a free-text argument (friendly names, group names) so
// that it is one token: '%', blanks, control characters and every non-ASCII
// byte are percent-encoded. Servers decode every argument, so UTF-8 text
// survives the round trip.
func Escape(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func needsEscape(c byte) bool { return c <= ' ' || c == '%' || c >= 0x7f }

// Unescape decodes a URL-encoded argument. Like the servers it is lenient:
// a '%' not followed by two hex digits is kept as it is. The result may not
// be valid UTF-8; callers that show it should check (see strings.ToValidUTF8).
func Unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
