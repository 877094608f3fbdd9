package stanza

import "testing"

func TestAppendCharData(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<status/>`, ``},
		{`<status></status>`, ``},
		{`<status>Out of battery.</status>`, `Out of battery.`},
		{`<status xml:lang='en' a="x>y">a &lt; b &amp; c &#233;&#x1F600;</status>`, "a < b & c é\U0001F600"},
		{`<status><![CDATA[<not markup> & ]]>tail</status>`, `<not markup> & tail`},
		{`<c:status xmlns:c='jabber:client'>x<b>hidden</b>y<i/>z</c:status>`, `xyz`},
		{"<status>a\r\nb\rc&#13;d<![CDATA[e\r\nf]]></status>", "a\nb\nc\rde\nf"},
		{`<status><a><a>deep</a></a>after</status>`, `after`},
	} {
		if got := string(AppendCharData([]byte("pre:"), []byte(tc.in))); got != "pre:"+tc.want {
			t.Errorf("AppendCharData(%q) = %q, want %q", tc.in, got, "pre:"+tc.want)
		}
	}
}

func TestAppendCharDataDoesNotAllocate(t *testing.T) {
	in := []byte(`<status>Going offline &amp; out of battery.</status>`)
	dst := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { dst = AppendCharData(dst[:0], in) }); n != 0 {
		t.Errorf("AppendCharData allocates %v times", n)
	}
}
