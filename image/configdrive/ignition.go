package configdrive

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	"github.com/speedia/host/image/spec"
)

// IgnitionVersion is the Ignition config spec the drive's config follows.
// Every field used here exists since 3.0.0, and 3.2.0 is accepted by every
// Ignition since 2.7 (2020): MicroOS and Leap Micro included, and
// Combustion's own tests use it with MicroOS's Ignition.
const IgnitionVersion = "3.2.0"

// modeFile is 0644, written in decimal as the spec wants.
const modeFile = 0o644

// The subset of the Ignition 3.2.0 config the drive uses. Field order is
// the output's order, which keeps it reproducible.
type ignConfig struct {
	Ignition ignMeta     `json:"ignition"`
	Passwd   *ignPasswd  `json:"passwd,omitempty"`
	Storage  *ignStorage `json:"storage,omitempty"`
}

type ignMeta struct {
	Version string `json:"version"`
}

type ignPasswd struct {
	Users []ignUser `json:"users"`
}

type ignUser struct {
	Name              string   `json:"name"`
	Groups            []string `json:"groups,omitempty"`
	Shell             string   `json:"shell,omitempty"`
	SSHAuthorizedKeys []string `json:"sshAuthorizedKeys,omitempty"`
}

type ignStorage struct {
	Files []ignFile `json:"files"`
}

type ignFile struct {
	Path      string      `json:"path"`
	Overwrite bool        `json:"overwrite"`
	Mode      int         `json:"mode"`
	Contents  ignContents `json:"contents"`
}

type ignContents struct {
	Source string `json:"source"`
}

// Ignition returns the Ignition config for s: the same users, keys,
// hostname and update policy as the script, declared. The spec's first-boot
// script is not in it: Combustion runs that (on MicroOS both run, Ignition
// first, so the script finds its work done).
func Ignition(s *spec.Spec) ([]byte, error) {
	if err := check(s); err != nil {
		return nil, err
	}
	c := ignConfig{Ignition: ignMeta{Version: IgnitionVersion}}
	var users []ignUser
	for _, u := range s.Users {
		iu := ignUser{Name: u.Name, SSHAuthorizedKeys: u.SSHKeys}
		if u.Name != "root" {
			// root exists; its shell and groups stay as the base has them.
			iu.Groups, iu.Shell = u.Groups, shell(u)
		} else if len(u.SSHKeys) == 0 {
			continue
		}
		users = append(users, iu)
	}
	if len(users) > 0 {
		c.Passwd = &ignPasswd{Users: users}
	}
	var files []ignFile
	if s.Hostname != "" {
		files = append(files, dataFile("/etc/hostname", s.Hostname+"\n"))
	}
	if s.Update.TOML != "" {
		files = append(files, dataFile("/etc/speedia/update.toml", withNewline(s.Update.TOML)))
	}
	if len(files) > 0 {
		c.Storage = &ignStorage{Files: files}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// dataFile is a file whose content is carried in an RFC 2397 data URL
// (base64: exact for any bytes, as Butane writes them).
func dataFile(path, content string) ignFile {
	return ignFile{
		Path:      path,
		Overwrite: true,
		Mode:      modeFile,
		Contents:  ignContents{Source: "data:;base64," + base64.StdEncoding.EncodeToString([]byte(content))},
	}
}
