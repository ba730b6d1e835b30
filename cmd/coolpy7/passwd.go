package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/coolpy7/coolpy7/auth/passwd"
)

// runPasswd is `coolpy7 passwd [-d] [-cost n] <file> <user>`: it sets a
// user's password (read from stdin, prompted for without echo on a
// terminal, twice) or deletes the user, and rewrites the file. A running
// broker picks the change up within seconds.
func runPasswd(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("coolpy7 passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	del := fs.Bool("d", false, "delete the user")
	cost := fs.Int("cost", 10, "bcrypt cost (4..31)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: coolpy7 passwd [-d] [-cost n] <file> <user>\n\nSets the password of user in the bcrypt password file (created if missing),\nread from standard input (prompted for on a terminal), or deletes the user with -d.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	path, user := fs.Arg(0), fs.Arg(1)
	f, err := passwd.Load(path, passwd.WithCost(*cost))
	if errors.Is(err, os.ErrNotExist) && !*del {
		f, err = passwd.New(path, passwd.WithCost(*cost)), nil
	}
	if err != nil {
		fmt.Fprintln(stderr, "coolpy7 passwd:", err)
		return 1
	}
	if *del {
		if !f.Remove(user) {
			fmt.Fprintf(stderr, "coolpy7 passwd: no user %q in %s\n", user, path)
			return 1
		}
	} else {
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "coolpy7 passwd:", err)
			return 1
		}
		if err := f.Add(user, pw); err != nil {
			fmt.Fprintln(stderr, "coolpy7 passwd:", err)
			return 1
		}
	}
	if err := f.Save(); err != nil {
		fmt.Fprintln(stderr, "coolpy7 passwd:", err)
		return 1
	}
	if *del {
		fmt.Fprintf(stdout, "deleted %s from %s\n", user, path)
	} else {
		fmt.Fprintf(stdout, "set the password of %s in %s\n", user, path)
	}
	return 0
}

// readPassword prompts twice without echo on a terminal, or reads the
// first line of a pipe.
func readPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(prompt, "Password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompt, "Again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ")
	}
	return string(a), nil
}
