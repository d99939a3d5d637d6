package seed

// Form definitions in OHTK's format, as its form builder (ohtk-ms lib/opsvForm) writes them and
// its mobile app (ohtk-mobile lib/opsv_form) reads them:
//
//	{"sections": [{"label", "description"?, "questions": [{"label", "name"?, "fields": [field…]}]}],
//	 "subforms": [{"<formRef>": {"sections": […]}}]}
//
// "subforms" is a list of one-entry objects keyed by the id a subform field names in formRef.
// The json:"-" members steer the generator and are not part of the stored definition.

type formDef struct {
	Sections []section             `json:"sections"`
	Subforms []map[string]*formDef `json:"subforms,omitempty"`
}

type section struct {
	Label       string     `json:"label"`
	Description string     `json:"description,omitempty"`
	Questions   []question `json:"questions"`
}

type question struct {
	Label       string   `json:"label"`
	Name        string   `json:"name,omitempty"`
	Description string   `json:"description,omitempty"`
	Fields      []*field `json:"fields"`
}

type field struct {
	ID                  string   `json:"id"`
	Name                string   `json:"name"`
	Type                string   `json:"type"`
	Label               string   `json:"label"`
	Required            bool     `json:"required"`
	SuffixLabel         string   `json:"suffixLabel,omitempty"`
	Options             []option `json:"options,omitempty"`
	WithTime            *bool    `json:"withTime,omitempty"`
	Min                 *int     `json:"min,omitempty"`
	Max                 *int     `json:"max,omitempty"`
	Rows                int      `json:"rows,omitempty"`
	MaxSize             int      `json:"maxSize,omitempty"`
	Supports            []string `json:"supports,omitempty"`
	FormRef             string   `json:"formRef,omitempty"`
	TitleTemplate       string   `json:"titleTemplate,omitempty"`
	DescriptionTemplate string   `json:"descriptionTemplate,omitempty"`

	// samples are the answers a text, textarea or free-text option is drawn from.
	samples []string
	// lo and hi bound integer and decimal answers.
	lo, hi float64
	// skip is the probability that an optional field is left unanswered.
	skip float64
	// files are the names a files field's uploads are drawn from.
	files []string
	// daysBack bounds how long before the report a date answer lies.
	daysBack int
	// weights, when set, are the relative frequencies of a single-choice field's options.
	weights []int
}

type option struct {
	Label     string `json:"label"`
	Value     string `json:"value"`
	TextInput bool   `json:"textInput"`
}

// reportType is one report type with its category and its definitions over time.
type reportType struct {
	name, category string
	def            *formDef
	// oldDef is the definition before the latest edit: reports of the middle period carry it
	// as their snapshot. Nil when the form never changed.
	oldDef     *formDef
	followup   *formDef
	template   string // renderer_data_template: {{path}} placeholders into data
	weight     int    // relative share of reports
	followable bool
}

func ptr[T any](v T) *T { return &v }

func opts(values ...string) []option {
	out := make([]option, len(values))
	for i, v := range values {
		out[i] = option{Label: v, Value: v}
	}
	return out
}

func withOther(o []option, label string) []option {
	return append(o, option{Label: label, Value: label, TextInput: true})
}

var categories = []struct{ name, icon string }{
	{"สุขภาพสัตว์", "paw"},
	{"สุขภาพคน", "person"},
	{"สิ่งแวดล้อม", "leaf"},
}

var imageField = func(id, name string) *field {
	return &field{ID: id, Name: name, Type: "images", Label: "ภาพถ่าย", Max: ptr(5), skip: 0.35}
}

// reportTypes builds the report types; every field type OHTK knows occurs in at least one.
func reportTypes() []reportType {
	animal := &formDef{Sections: []section{
		{Label: "ข้อมูลสัตว์", Questions: []question{
			{Label: "ชนิดสัตว์", Fields: []*field{
				{ID: "a1", Name: "animal_type", Type: "singlechoices", Label: "ชนิดสัตว์ที่ป่วยหรือตาย", Required: true,
					Options: withOther(opts("โค", "กระบือ", "สุกร", "ไก่", "เป็ด", "สุนัข", "แมว"), "อื่นๆ"),
					samples: []string{"แพะ", "ห่าน", "นกกระทา", "ม้า"}, weights: []int{15, 5, 15, 35, 12, 10, 5, 3}},
			}},
			{Label: "จำนวนสัตว์", Name: "counts", Fields: []*field{
				{ID: "a2", Name: "sick", Type: "integer", Label: "ป่วย", Required: true, Min: ptr(0), SuffixLabel: "ตัว", lo: 1, hi: 30},
				{ID: "a3", Name: "dead", Type: "integer", Label: "ตาย", Required: true, Min: ptr(0), SuffixLabel: "ตัว", lo: 0, hi: 12},
				{ID: "a4", Name: "total", Type: "integer", Label: "จำนวนสัตว์ทั้งหมดในฝูง", SuffixLabel: "ตัว", lo: 5, hi: 400, skip: 0.2},
			}},
			{Label: "อาการ", Fields: []*field{
				{ID: "a5", Name: "symptoms", Type: "multiplechoices", Label: "อาการที่พบ", Required: true,
					Options: withOther(opts("ซึม", "ไม่กินอาหาร", "ท้องเสีย", "ไอ", "มีไข้", "น้ำลายไหล", "ตายเฉียบพลัน"), "อื่นๆ"),
					samples: []string{"ขาเจ็บ", "ผิวหนังเป็นตุ่ม", "หายใจลำบาก", "แท้งลูก"}},
				{ID: "a6", Name: "onset", Type: "date", Label: "วันเวลาที่เริ่มป่วย", Required: true, WithTime: ptr(true), daysBack: 10},
				{ID: "a7", Name: "weight", Type: "decimal", Label: "น้ำหนักเฉลี่ย", SuffixLabel: "กิโลกรัม", lo: 0.8, hi: 450, skip: 0.3},
			}},
		}},
		{Label: "สถานที่และภาพถ่าย", Questions: []question{
			{Label: "พิกัด", Fields: []*field{
				{ID: "a8", Name: "location", Type: "location", Label: "ตำแหน่งที่พบ", Required: true},
			}},
			{Label: "ภาพถ่าย", Fields: []*field{imageField("a9", "images")}},
			{Label: "รายละเอียดเพิ่มเติม", Fields: []*field{
				{ID: "a10", Name: "detail", Type: "textarea", Label: "รายละเอียด", Rows: 4, skip: 0.3, samples: []string{
					"สัตว์ในฟาร์มเริ่มป่วยหลังฝนตกหนัก เจ้าของให้ยาเองแล้วอาการไม่ดีขึ้น",
					"พบซากสัตว์ริมลำเหมือง ชาวบ้านแจ้งว่ามีกลิ่นเหม็น",
					"เจ้าของซื้อสัตว์มาจากตลาดนัดเมื่อสัปดาห์ก่อน",
					"ไก่พื้นเมืองตายต่อเนื่อง 3 วัน\nเพื่อนบ้านมีอาการคล้ายกัน",
					"Owner reports the herd stopped eating after vaccination.",
				}},
				{ID: "a11", Name: "owner", Type: "text", Label: "ชื่อเจ้าของสัตว์", skip: 0.25, samples: []string{
					"นายบุญมี ศรีสุข", "นางมาลี ทองดี", "นายคำปัน ใจมั่น", "ฟาร์มสุขเจริญ", "O'Brien \"Farm\", Ltd.",
				}},
			}},
		}},
	}}
	// Before the last edit the animal form had no owner field and no "น้ำลายไหล" symptom.
	oldAnimal := cloneDef(animal)
	oldAnimal.Sections[1].Questions[2].Fields = oldAnimal.Sections[1].Questions[2].Fields[:1]
	sym := oldAnimal.Sections[0].Questions[2].Fields[0]
	sym.Options = append(append([]option{}, sym.Options[:5]...), sym.Options[6:]...)

	human := &formDef{
		Sections: []section{
			{Label: "ผู้ป่วย", Questions: []question{
				{Label: "ข้อมูลผู้ป่วย", Name: "patient", Fields: []*field{
					{ID: "h1", Name: "age", Type: "integer", Label: "อายุ", Required: true, Min: ptr(0), Max: ptr(120), SuffixLabel: "ปี", lo: 1, hi: 90},
					{ID: "h2", Name: "sex", Type: "singlechoices", Label: "เพศ", Required: true, Options: opts("ชาย", "หญิง")},
					{ID: "h3", Name: "temperature", Type: "decimal", Label: "อุณหภูมิร่างกาย", SuffixLabel: "°C", lo: 36.2, hi: 40.5, skip: 0.15},
				}},
				{Label: "อาการ", Fields: []*field{
					{ID: "h4", Name: "symptoms", Type: "multiplechoices", Label: "อาการ", Required: true,
						Options: withOther(opts("ไข้", "ไอ", "ผื่น", "ปวดกล้ามเนื้อ", "ท้องเสีย", "ตาแดง"), "อื่นๆ"),
						samples: []string{"ปวดศีรษะ", "อาเจียน", "หนาวสั่น"}},
					{ID: "h5", Name: "onset_date", Type: "date", Label: "วันที่เริ่มป่วย", Required: true, WithTime: ptr(false), daysBack: 14},
					{ID: "h6", Name: "contact_animal", Type: "singlechoices", Label: "สัมผัสสัตว์ป่วยหรือตายใน 14 วัน",
						Options: withOther(opts("ไม่ได้สัมผัส", "สัมผัสสัตว์ปีก", "สัมผัสสุกร"), "สัมผัสสัตว์อื่น"),
						samples: []string{"สุนัขจรจัดกัด", "ชำแหละโค", "ค้างคาว"}, weights: []int{60, 20, 12, 8}},
				}},
			}},
			{Label: "ผู้สัมผัสและเอกสาร", Questions: []question{
				{Label: "ผู้สัมผัสใกล้ชิด", Fields: []*field{
					{ID: "h7", Name: "contacts", Type: "subform", Label: "ผู้สัมผัสใกล้ชิดในครัวเรือน", FormRef: "contact",
						TitleTemplate: "{{contact_name}}", DescriptionTemplate: "{{relation}} อายุ {{age}} ปี", skip: 0.4},
				}},
				{Label: "เอกสารผลตรวจ", Fields: []*field{
					{ID: "h8", Name: "lab_results", Type: "files", Label: "ผลตรวจทางห้องปฏิบัติการ", Max: ptr(3), MaxSize: 5000000,
						Supports: []string{"application/pdf", "image/jpeg"}, skip: 0.7,
						files: []string{"ผลตรวจเลือด.pdf", "lab-result.pdf", "ใบรับรองแพทย์.jpg", "xray scan.jpg"}},
				}},
				{Label: "หมายเหตุ", Fields: []*field{
					{ID: "h9", Name: "note", Type: "text", Label: "หมายเหตุ", skip: 0.5, samples: []string{
						"ส่งต่อโรงพยาบาลชุมชนแล้ว", "อสม. ติดตามอาการทุกวัน", "ผู้ป่วยเดินทางกลับจากต่างจังหวัด", "—",
					}},
				}},
			}},
		},
		Subforms: []map[string]*formDef{{"contact": {Sections: []section{{Label: "ผู้สัมผัส", Questions: []question{
			{Label: "ข้อมูลผู้สัมผัส", Fields: []*field{
				{ID: "c1", Name: "contact_name", Type: "text", Label: "ชื่อ", Required: true, samples: []string{"สมศรี", "บุญส่ง", "แสงเดือน", "ด.ช. ณัฐพล", "ยายคำ"}},
				{ID: "c2", Name: "age", Type: "integer", Label: "อายุ", lo: 1, hi: 85},
				{ID: "c3", Name: "relation", Type: "singlechoices", Label: "ความสัมพันธ์", Options: withOther(opts("คู่สมรส", "บุตร", "บิดามารดา"), "อื่นๆ"),
					samples: []string{"หลาน", "เพื่อนบ้าน", "ลูกจ้าง"}},
				{ID: "c4", Name: "has_symptoms", Type: "multiplechoices", Label: "อาการ", Options: opts("ไข้", "ไอ", "ไม่มีอาการ")},
			}},
		}}}}}},
	}

	env := &formDef{Sections: []section{
		{Label: "ปัญหาสิ่งแวดล้อม", Questions: []question{
			{Label: "ประเภทปัญหา", Fields: []*field{
				{ID: "e1", Name: "problem", Type: "singlechoices", Label: "ประเภท", Required: true,
					Options: withOther(opts("น้ำเสีย", "ขยะ", "ควันไฟป่า/ฝุ่น PM2.5", "สารเคมีทางการเกษตร", "ปลาตาย"), "อื่นๆ"),
					samples: []string{"กลิ่นเหม็นจากฟาร์มสุกร", "ไฟไหม้ตอซัง", "น้ำท่วมขัง"}, weights: []int{15, 25, 35, 10, 10, 5}},
				{ID: "e2", Name: "smoke level", Type: "singlechoices", Label: "ระดับความรุนแรง", Required: true, Options: opts("น้อย", "ปานกลาง", "มาก", "วิกฤต")},
			}},
			{Label: "การวัด", Name: "measure", Fields: []*field{
				{ID: "e3", Name: "pm25", Type: "decimal", Label: "ค่า PM2.5", SuffixLabel: "µg/m³", lo: 12, hi: 280, skip: 0.4},
				{ID: "e4", Name: "affected households", Type: "integer", Label: "จำนวนครัวเรือนที่ได้รับผลกระทบ", lo: 1, hi: 120, skip: 0.2},
				{ID: "e5", Name: "observed_at", Type: "date", Label: "เวลาที่พบ", Required: true, WithTime: ptr(true), daysBack: 3},
			}},
			{Label: "รายละเอียด", Fields: []*field{
				{ID: "e6", Name: "where", Type: "location", Label: "ตำแหน่ง", Required: true},
				{ID: "e7", Name: "photos", Type: "images", Label: "ภาพถ่าย", Max: ptr(5), skip: 0.3},
				{ID: "e8", Name: "description", Type: "textarea", Label: "รายละเอียด", Rows: 3, skip: 0.35, samples: []string{
					"ควันจากการเผาไร่ข้าวโพดปกคลุมหมู่บ้านตั้งแต่เช้า",
					"น้ำในลำห้วยเปลี่ยนเป็นสีดำ, มีปลาลอยตาย",
					"มีการลักลอบทิ้งขยะริมถนนทางหลวง 108",
					"ชาวบ้านร้องเรียน \"กลิ่นเหม็น\" ตอนกลางคืน",
				}},
			}},
		}},
	}}

	followup := &formDef{Sections: []section{{Label: "ติดตามอาการ", Questions: []question{
		{Label: "สถานะ", Fields: []*field{
			{ID: "f1", Name: "status", Type: "singlechoices", Label: "สถานะล่าสุด", Required: true, Options: opts("หายป่วย", "ยังป่วย", "ตายเพิ่ม"), weights: []int{50, 35, 15}},
			{ID: "f2", Name: "new_dead", Type: "integer", Label: "ตายเพิ่ม", lo: 0, hi: 5},
			{ID: "f3", Name: "remark", Type: "text", Label: "บันทึก", skip: 0.4, samples: []string{"ปศุสัตว์อำเภอเข้าตรวจแล้ว", "ฉีดวัคซีนทั้งฝูง", "เก็บตัวอย่างส่งห้องแล็บ"}},
		}},
	}}}}

	return []reportType{
		{name: "สัตว์ป่วย/ตาย", category: "สุขภาพสัตว์", def: animal, oldDef: oldAnimal, followup: followup, followable: true, weight: 55,
			template: "{{animal_type__value}} ป่วย {{counts.sick}} ตัว ตาย {{counts.dead}} ตัว อาการ: {{symptoms__value}}"},
		{name: "ผู้ป่วยสงสัยโรคติดต่อ", category: "สุขภาพคน", def: human, weight: 25,
			template: "ผู้ป่วย{{patient.sex}} อายุ {{patient.age}} ปี อาการ: {{symptoms__value}}"},
		{name: "ปัญหาสิ่งแวดล้อม", category: "สิ่งแวดล้อม", def: env, weight: 20,
			template: "{{problem__value}} ระดับ{{smoke level}}"},
	}
}

// cloneDef copies a definition deeply enough that editing its fields and options leaves the
// original alone.
func cloneDef(d *formDef) *formDef {
	out := &formDef{}
	for _, s := range d.Sections {
		ns := section{Label: s.Label, Description: s.Description}
		for _, q := range s.Questions {
			nq := question{Label: q.Label, Name: q.Name, Description: q.Description}
			for _, f := range q.Fields {
				nf := *f
				nf.Options = append([]option(nil), f.Options...)
				nq.Fields = append(nq.Fields, &nf)
			}
			ns.Questions = append(ns.Questions, nq)
		}
		out.Sections = append(out.Sections, ns)
	}
	for _, m := range d.Subforms {
		nm := map[string]*formDef{}
		for k, v := range m {
			nm[k] = cloneDef(v)
		}
		out.Subforms = append(out.Subforms, nm)
	}
	return out
}

// subform returns the definition a subform field refers to.
func (d *formDef) subform(ref string) *formDef {
	for _, m := range d.Subforms {
		if f, ok := m[ref]; ok {
			return f
		}
	}
	return nil
}
