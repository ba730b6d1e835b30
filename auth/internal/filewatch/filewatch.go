// Package filewatch tells when a configuration file changed on disk, by
// polling: portable, no extra dependency, and a password or ACL file
// changes seldom enough that a few seconds' delay does not matter.
package filewatch

import (
	"context"
	"os"
	"time"
)

// Stamp identifies one version of a file.
type Stamp struct {
	fi os.FileInfo
}

// Of stamps the file at path as it is now.
func Of(path string) (Stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, err
	}
	return Stamp{fi}, nil
}

// Changed reports whether path is no longer the file s stamped: replaced
// (editors and Save write a new file and rename it over the old one),
// resized or touched.
func (s Stamp) Changed(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return s.fi == nil || !os.SameFile(s.fi, fi) || fi.Size() != s.fi.Size() || !fi.ModTime().Equal(s.fi.ModTime()), nil
}

// Watch calls reload every interval until ctx is done, passing its
// errors to onErr (which may be nil). reload is expected to check the
// stamp itself and do nothing when the file did not change.
func Watch(ctx context.Context, every time.Duration, reload func() (bool, error), onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := reload(); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
