package multivalue

import (
	"reflect"
	"testing"
	"unsafe"
)

// The fields of checkSpec and checkTemplate that are not in checkKey, each
// with the setting (a field of checkSettings) it is derived from or written
// as. A field in neither checkKey nor these lists would let two checks that
// differ in it share one probe: put the setting in checkSettings instead.
var (
	specDerived = map[string]string{
		"statusRanges": "status",  // parsed
		"header":       "headers", // parsed
		"caPool":       "caFile",  // loaded
		// Instantiated from children for the value. A calculated check is
		// not in the check table: each value has its own, over kids that
		// are shared by their own keys.
		"kids": "children",
		// Not a setting: equal settings under two template names are one
		// check, whose reasons name one of them.
		"template": "",
	}
	templateOwn = map[string]string{
		"name":         "", // not a setting: equal settings under two names are one check
		"line":         "",
		"childrenLine": "",
		"host":         "hostHeader",
		"status":       "status",
		"header":       "headers",
		"caPool":       "caFile",
		// The template's target is the spec's host (in the key, next to
		// the settings) and port; TestSpecCarriesEverySetting checks both.
		"targetHost": "",
		"targetPort": "port",
	}
)

// timing are the settings probeKey leaves out: when and how often a check
// probes, and how many results it takes to turn, not what a probe finds.
var timing = map[string]bool{"interval": true, "fastInterval": true, "timeout": true, "failureThreshold": true, "successThreshold": true}

// TestCheckKeyCoversEverySetting fails when checkSpec or checkTemplate gets a
// field that is neither in the key nor listed as derived from a field that is.
func TestCheckKeyCoversEverySetting(t *testing.T) {
	settings, spec, tmpl, key := reflect.TypeFor[checkSettings](), reflect.TypeFor[checkSpec](), reflect.TypeFor[checkTemplate](), reflect.TypeFor[checkKey]()
	isSettings := func(f reflect.StructField) bool { return f.Anonymous && f.Type == settings }

	for i := range settings.NumField() {
		if f := settings.Field(i); !comparesByValue(f.Type) {
			t.Errorf("checkSettings.%s is a %s, which does not compare by value: keep it outside, derived from a setting that does", f.Name, f.Type)
		}
	}
	derivedFrom := func(list map[string]string, owner string) {
		for field, from := range list {
			if _, ok := settings.FieldByName(from); from != "" && !ok {
				t.Errorf("%s.%s is listed as derived from %q, which is not a field of checkSettings", owner, field, from)
			}
		}
	}
	derivedFrom(specDerived, "checkSpec")
	derivedFrom(templateOwn, "checkTemplate")

	// The key is the settings and the spec's other comparable fields.
	for i := range key.NumField() {
		f := key.Field(i)
		if sf, ok := spec.FieldByName(f.Name); !isSettings(f) && (!ok || sf.Type != f.Type || len(sf.Index) != 1) {
			t.Errorf("checkKey.%s is not a field of checkSpec", f.Name)
		}
	}
	for i := range spec.NumField() {
		f := spec.Field(i)
		kf, inKey := key.FieldByName(f.Name)
		_, derived := specDerived[f.Name]
		switch {
		case isSettings(f), inKey && len(kf.Index) == 1 && kf.Type == f.Type, derived:
		default:
			t.Errorf("checkSpec.%s is neither in checkKey nor derived from a field that is: add it to checkSettings, or list it in specDerived", f.Name)
		}
	}
	for i := range tmpl.NumField() {
		f := tmpl.Field(i)
		if _, own := templateOwn[f.Name]; !isSettings(f) && !own {
			t.Errorf("checkTemplate.%s is not in checkSettings: add it there, or list it in templateOwn with the setting it is written as", f.Name)
		}
	}
	for field := range specDerived {
		if _, ok := spec.FieldByName(field); !ok {
			t.Errorf("specDerived lists %s, which checkSpec does not have", field)
		}
	}
	for field := range templateOwn {
		if _, ok := tmpl.FieldByName(field); !ok {
			t.Errorf("templateOwn lists %s, which checkTemplate does not have", field)
		}
	}
}

// comparesByValue reports whether == on values of t compares their contents:
// no pointers, slices, maps, functions, channels or interfaces.
func comparesByValue(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return comparesByValue(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !comparesByValue(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// perturb changes the value of a field, exported or not, to another one.
func perturb(t *testing.T, v reflect.Value) {
	t.Helper()
	v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 7)
	default:
		t.Fatalf("perturb: no way to change a %s", v.Type())
	}
}

// settingTemplate is a template on which setting (a checkSettings field)
// applies: https, to which most apply, else the protocol it belongs to.
func settingTemplate(setting string) *checkTemplate {
	protocolOf := map[string]string{
		"service":          protoGRPCS,
		"query":            protoDNS,
		"queryType":        protoDNS,
		"children":         protoCalculated,
		"healthyThreshold": protoCalculated,
	}
	tp := newCheckTemplate("web", 1)
	tp.protocol = protoHTTPS
	if p, ok := protocolOf[setting]; ok {
		tp.protocol = p
	}
	tp.query, tp.children = "www.example.org.", "a b" // dns and calculated need them
	return tp
}

// TestSpecCarriesEverySetting: every setting of a template, changed alone on
// a protocol it applies to, changes the key of the check it makes; only the
// timing settings leave the probe key unchanged.
func TestSpecCarriesEverySetting(t *testing.T) {
	base := settingTemplate
	key := func(tp *checkTemplate) checkKey { return tp.spec("127.0.0.1", 0, 0).key() }

	// The settings a template writes as other fields of its own.
	writtenAs := map[string]func(*checkTemplate){
		"hostHeader": func(tp *checkTemplate) { tp.host = "www.example.org" },
		"status":     func(tp *checkTemplate) { tp.status = []statusRange{{200, 200}} },
		"headers":    func(tp *checkTemplate) { tp.header = []httpHeader{{"X-Check", "1"}} },
	}
	settings := reflect.TypeFor[checkSettings]()
	for i := range settings.NumField() {
		name := settings.Field(i).Name
		tp := base(name)
		want := key(base(name))
		if set, ok := writtenAs[name]; ok {
			set(tp)
		} else {
			perturb(t, reflect.ValueOf(&tp.checkSettings).Elem().Field(i))
		}
		got := key(tp)
		if got == want {
			t.Errorf("changing %s in a %s template does not change the check's key", name, tp.protocol)
		}
		if same := probeKey(got) == probeKey(want); same != timing[name] {
			t.Errorf("changing %s: probe key unchanged %v, want %v", name, same, timing[name])
		}
	}
	want := key(base(""))
	other := base("").spec("127.0.0.2", 0, 0).key()
	if other == want || probeKey(other) == probeKey(want) {
		t.Error("another target host must make another check and another probe")
	}
	// A template's own target is the check's target, whatever the value's.
	withTarget := func(host string, port int) checkKey {
		tp := base("")
		tp.targetHost, tp.targetPort = host, port
		return tp.spec("127.0.0.1", 8080, 0).key()
	}
	if k := withTarget("127.0.0.9", 0); k.host != "127.0.0.9" || k.port != 443 {
		t.Errorf("a template's target 127.0.0.9 makes a check of %s:%d, want 127.0.0.9:443", k.host, k.port)
	}
	if withTarget("127.0.0.9", 0) == withTarget("127.0.0.10", 0) || withTarget("127.0.0.9", 0) == withTarget("127.0.0.9", 9443) {
		t.Error("a template's target host and port must be in the key")
	}
	for name := range timing {
		if _, ok := settings.FieldByName(name); !ok {
			t.Errorf("timing lists %s, which checkSettings does not have", name)
		}
	}
}
