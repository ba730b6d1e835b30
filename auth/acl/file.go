package acl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coolpy7/coolpy7/auth/internal/filewatch"
)

// File is a parsed ACL file. Its text format, one statement a line:
//
//	# a comment: '#' as the first non-blank character of a line
//	allow pub    devices/%c/#      rules before any section are for everyone
//	allow sub    cmd/%c
//	deny  pubsub $SYS/#
//
//	user alice                     rules for the username "alice"
//	allow pubsub alice/#
//
//	client sensor-1                rules for the client ID "sensor-1"
//	allow pub    sensors/1/#
//
//	all                            back to rules for everyone
//
// A rule is allow or deny, then pub, sub or pubsub, then a topic filter
// (the rest of the line, spaces and all, trimmed at both ends) in which
// %u is the username and %c the client ID. A section runs to the next
// section line; a user or client may have several sections. A connection
// is governed by the rules for everyone, for its username and for its
// client ID together, with deny-overrides semantics (see the package
// comment). Client IDs are chosen by clients, so a client section is only
// as trustworthy as whatever stops a client from using another's ID.
type File struct {
	all     *Set
	users   map[string]*Set
	clients map[string]*Set
}

// Load reads and parses the ACL file at path.
func Load(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	f, err := Parse(fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse parses an ACL file's text.
func Parse(r io.Reader) (*File, error) {
	all := new([]Rule)
	users, clients := map[string]*[]Rule{}, map[string]*[]Rule{}
	cur := all
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		word, rest := cutField(line)
		switch word {
		case "all":
			if rest != "" {
				return nil, fmt.Errorf("acl: line %d: nothing may follow \"all\"", n)
			}
			cur = all
		case "user", "client":
			if rest == "" {
				return nil, fmt.Errorf("acl: line %d: %s needs a name", n, word)
			}
			m := users
			if word == "client" {
				m = clients
			}
			if m[rest] == nil {
				m[rest] = new([]Rule)
			}
			cur = m[rest]
		case "allow", "deny":
			acc, pattern := cutField(rest)
			r := Rule{Deny: word == "deny", Pattern: pattern}
			switch acc {
			case "pub":
				r.Access = Pub
			case "sub":
				r.Access = Sub
			case "pubsub":
				r.Access = Pub | Sub
			default:
				return nil, fmt.Errorf("acl: line %d: want pub, sub or pubsub after %s, got %q", n, word, acc)
			}
			if err := checkPattern(pattern); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			*cur = append(*cur, r)
		default:
			return nil, fmt.Errorf("acl: line %d: unknown statement %q", n, word)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	f := &File{}
	var err error
	if f.all, err = Compile(*all); err != nil {
		return nil, err
	}
	if f.users, err = compileSections(users); err != nil {
		return nil, err
	}
	if f.clients, err = compileSections(clients); err != nil {
		return nil, err
	}
	return f, nil
}

func compileSections(src map[string]*[]Rule) (map[string]*Set, error) {
	m := make(map[string]*Set, len(src))
	for name, rules := range src {
		s, err := Compile(*rules)
		if err != nil {
			return nil, err
		}
		m[name] = s
	}
	return m, nil
}

// cutField splits off the first blank-separated word of s and returns the
// rest trimmed.
func cutField(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// For gives the ACL of a connection: the rules for everyone, for its
// username and for its client ID.
func (f *File) For(username, clientID string) ACL {
	return bind([3]*Set{f.all, f.users[username], f.clients[clientID]}, username, clientID)
}

// Store holds the ACL file in force and reloads it when it changes on
// disk. An ACL already bound keeps the rules it was bound with; the
// broker rebinds live connections (File().For) after a reload when it
// wants the new rules applied to them too.
type Store struct {
	path string
	file atomic.Pointer[File]

	mu    sync.Mutex // serializes reloads
	stamp filewatch.Stamp
}

// LoadStore loads the ACL file at path into a Store.
func LoadStore(path string) (*Store, error) {
	s := &Store{path: path}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// File is the ACL file in force.
func (s *Store) File() *File { return s.file.Load() }

// Reload reads the file again if it changed since it was last read. A
// file that no longer parses leaves the previous rules in force.
func (s *Store) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if changed, err = s.stamp.Changed(s.path); !changed || err != nil {
		return false, err
	}
	return s.load()
}

// load reads the file; the caller holds mu or owns s. The stamp is taken
// before reading so that a write racing with the read is seen next time.
func (s *Store) load() (bool, error) {
	st, err := filewatch.Of(s.path)
	if err != nil {
		return false, err
	}
	f, err := Load(s.path)
	if err != nil {
		return false, err
	}
	s.file.Store(f)
	s.stamp = st
	return true, nil
}

// Watch reloads the file whenever it changes, checking every interval,
// until ctx is done; errors go to onErr, which may be nil.
func (s *Store) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	filewatch.Watch(ctx, every, s.Reload, onErr)
}
