package demo

import (
	"fmt"
	"io"
	"strings"
	"unicode"
)

// PrintWelcome writes the URLs and the logins, one table of logins per tenant, their columns
// aligned across the tenants.
func (d *Demo) PrintWelcome(w io.Writer) {
	fmt.Fprintf(w, "\nohtkhub demo is running.\n\n  Hub (open this):  %s\n  Export API:       %s\n\n", d.Info.HubURL, d.Info.APIURL)
	nameWidth, passWidth := 0, 0
	for _, t := range d.Info.Tenants {
		for _, u := range t.Users {
			nameWidth = max(nameWidth, displayWidth(u.Username))
			passWidth = max(passWidth, displayWidth(u.Password))
		}
	}
	for _, t := range d.Info.Tenants {
		fmt.Fprintf(w, "  Tenant %q (%s), API %s\n", t.Label, t.Key, t.APIURL)
		for _, u := range t.Users {
			role := u.Role
			if u.IsSuperuser {
				role = "superuser"
			}
			if role == "" {
				role = "-"
			}
			line := fmt.Sprintf("    %s  password %s  %-9s %s", padRight(u.Username, nameWidth), padRight(u.Password, passWidth), role, u.AuthorityCode)
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
	fmt.Fprintf(w, "\nLogins and URLs are also in %s. Press Ctrl-C to stop.\n", d.infoPath)
}

// displayWidth is the number of terminal columns s takes: fmt pads by runes, but Thai vowel
// and tone marks (like every nonspacing or enclosing mark) and format characters such as
// zero-width joiners take none. East Asian wide characters are counted as one.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) {
			n++
		}
	}
	return n
}

// padRight pads s with spaces to width columns.
func padRight(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-displayWidth(s)))
}
