package configdrive

import (
	"fmt"
	"strings"

	"github.com/speedia/host/image/spec"
)

// prologue defines the script's steps; Script appends one call per thing
// to do. Every step first looks whether its work is done, so running the
// script twice changes nothing the first run set right.
//
// No line here may start with "# combustion:": Combustion reads such lines
// as flags (network, prepare) and the generated part does not need any.
const prologue = `#!/bin/sh
# Speedia host first-boot configuration, made by speedia-image config-drive
# (docs/firstboot.md). Combustion runs it on MicroOS, speedia-firstboot.service
# on Debian. Safe to run again: each step checks before it changes anything.
set -eu
umask 022

log() { printf 'speedia-firstboot: %s\n' "$*"; }

spec_tmp=
trap 'rc=$?; [ -z "$spec_tmp" ] || rm -f "$spec_tmp"; [ "$rc" -eq 0 ] || log "failed (exit $rc)"' EXIT

# set_hostname NAME
set_hostname() {
	if [ "$(cat /etc/hostname 2>/dev/null || :)" != "$1" ]; then
		printf '%s\n' "$1" >/etc/hostname
		log "hostname set to $1"
	fi
	# The running system's name too, where this may set it.
	hostname "$1" 2>/dev/null || :
}

# add_user NAME SHELL: creates NAME with a home directory unless it exists.
add_user() {
	if id -u "$1" >/dev/null 2>&1; then
		return 0
	fi
	useradd -m -s "$2" "$1"
	log "user $1 created"
}

# add_group NAME GROUP: makes NAME a member of GROUP.
add_group() {
	case " $(id -nG "$1") " in
	*" $2 "*) ;;
	*)
		usermod -a -G "$2" "$1"
		log "user $1 added to group $2"
		;;
	esac
}

# user_home NAME: sets home and group for NAME, and makes a missing home
# directory (owned by NAME, 0700): on MicroOS, Ignition may have created the
# user before /home was mounted.
user_home() {
	home=$(getent passwd "$1" | cut -d: -f6)
	if [ -z "$home" ]; then
		log "user $1 does not exist or has no home directory"
		return 1
	fi
	group=$(id -g "$1")
	if [ ! -d "$home" ]; then
		mkdir -p "$home"
		chown "$1:$group" "$home"
		chmod 700 "$home"
		log "made the missing home directory $home of $1"
	fi
}

# add_key NAME KEY: appends KEY to NAME's authorized_keys unless it is there.
add_key() {
	user_home "$1"
	mkdir -p "$home/.ssh"
	chown "$1:$group" "$home/.ssh"
	chmod 700 "$home/.ssh"
	f=$home/.ssh/authorized_keys
	[ -e "$f" ] || : >"$f"
	chown "$1:$group" "$f"
	chmod 600 "$f"
	if grep -qxF -e "$2" "$f"; then
		return 0
	fi
	# A last line without its newline would run into the key.
	if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then
		echo >>"$f"
	fi
	printf '%s\n' "$2" >>"$f"
	log "SSH key added for $1"
}

# install_file PATH: writes standard input to PATH, mode 0644, through a
# temporary file and a rename.
install_file() {
	mkdir -p "$(dirname "$1")"
	cat >"$1.speedia-tmp"
	chmod 644 "$1.speedia-tmp"
	mv -f "$1.speedia-tmp" "$1"
	log "wrote $1"
}
`

// Script returns the Combustion script for s: a POSIX sh script that sets
// the hostname, creates users, adds their SSH keys, writes the update policy
// and then runs the spec's own first-boot script, if any.
func Script(s *spec.Spec) ([]byte, error) {
	if err := check(s); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(prologue)
	body := string(s.Firstboot.ScriptBody)
	if body != "" {
		// The spec's script, kept here as written, run last. Combustion
		// calls the whole script with --prepare from the initrd when a
		// line starts "# combustion: prepare", which only the spec's
		// script can carry: that call is for it alone.
		b.WriteString("\n# spec_script ARG...: runs the spec's first-boot script.\nspec_script() {\n\tspec_tmp=$(mktemp)\n")
		hereDocument(&b, "\tcat >\"$spec_tmp\"", body)
		b.WriteString("\tlog \"running the spec's first-boot script\"\n")
		fmt.Fprintf(&b, "\t%s \"$spec_tmp\" \"$@\"\n", interpreter(body))
		b.WriteString("\trm -f \"$spec_tmp\"\n\tspec_tmp=\n}\n")
		b.WriteString("\nif [ \"${1-}\" = --prepare ]; then\n\tspec_script --prepare\n\texit 0\nfi\n")
	} else {
		b.WriteString("\nif [ \"${1-}\" = --prepare ]; then\n\texit 0\nfi\n")
	}
	b.WriteString("\nlog \"configuring this host\"\n")
	if s.Hostname != "" {
		fmt.Fprintf(&b, "set_hostname %s\n", quote(s.Hostname))
	}
	for _, u := range s.Users {
		if u.Name != "root" {
			fmt.Fprintf(&b, "add_user %s %s\n", quote(u.Name), quote(shell(u)))
			for _, g := range u.Groups {
				fmt.Fprintf(&b, "add_group %s %s\n", quote(u.Name), quote(g))
			}
		}
		for _, k := range u.SSHKeys {
			fmt.Fprintf(&b, "add_key %s %s\n", quote(u.Name), quote(k))
		}
	}
	if s.Update.TOML != "" {
		hereDocument(&b, "install_file /etc/speedia/update.toml", s.Update.TOML)
	}
	if body != "" {
		b.WriteString("spec_script\n")
	}
	b.WriteString("log \"done\"\n")
	return []byte(b.String()), nil
}

// quote makes s one shell word, taken literally: single quotes keep
// everything but a single quote, which is closed, escaped and reopened.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// hereDocument writes cmd reading text from a quoted here-document.
func hereDocument(b *strings.Builder, cmd, text string) {
	d := hereDoc(text)
	fmt.Fprintf(b, "%s <<'%s'\n%s%s\n", cmd, d, withNewline(text), d)
}

// hereDoc returns a here-document delimiter that is no line of text: with
// the delimiter quoted the shell expands nothing inside, so only a line
// equal to it could end the document early. The first free one of a fixed
// sequence keeps the output reproducible.
func hereDoc(text string) string {
	lines := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		lines[l] = true
	}
	d := "SPEEDIA_EOF"
	for i := 1; lines[d]; i++ {
		d = fmt.Sprintf("SPEEDIA_EOF_%d", i)
	}
	return d
}

// interpreter is the command line that runs the spec's script: its own
// "#!" line (the interpreter and at most one argument, as the kernel reads
// it), else sh. Calling the interpreter directly, rather than executing the
// file, works from a temporary directory mounted noexec too.
func interpreter(body string) string {
	first, _, _ := strings.Cut(body, "\n")
	line, ok := strings.CutPrefix(first, "#!")
	if !ok || strings.TrimSpace(line) == "" {
		return "/bin/sh"
	}
	line = strings.Trim(line, " \t\r")
	interp, arg := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		interp, arg = line[:i], strings.Trim(line[i+1:], " \t")
	}
	out := quote(interp)
	if arg != "" {
		out += " " + quote(arg)
	}
	return out
}
