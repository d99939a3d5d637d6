package seed

// province is one province of the authority tree: province → districts → subdistricts.
// Names are the real Thai names; codes follow the Department of Provincial Administration's
// numbering (2 digits for a province, 4 for a district, 6 for a subdistrict).
type province struct {
	code, name, english string
	postcode            string
	districts           []district
	// shared names a subdistrict that also belongs to a second district, which turns the
	// tree into a DAG the way OHTK deployments model joint municipal areas.
	shared sharedEdge
}

type district struct {
	code, name  string
	lat, lng    float64
	subdistrict []place
}

type place struct {
	code, name string
	lat, lng   float64
}

type sharedEdge struct {
	subdistrict string // code of the subdistrict with two parents
	alsoUnder   string // code of its second parent district
}

// provinces are the authority trees a tenant can be seeded with; RandSeed picks one.
var provinces = []province{
	{
		code: "50", name: "จังหวัดเชียงใหม่", english: "Chiang Mai", postcode: "50000",
		districts: []district{
			{code: "5001", name: "อำเภอเมืองเชียงใหม่", lat: 18.7883, lng: 98.9853, subdistrict: []place{
				{"500101", "ตำบลศรีภูมิ", 18.7950, 98.9880},
				{"500102", "ตำบลพระสิงห์", 18.7880, 98.9820},
				{"500107", "ตำบลช้างเผือก", 18.8150, 98.9700},
				{"500108", "ตำบลสุเทพ", 18.8040, 98.9440},
				{"500109", "ตำบลแม่เหียะ", 18.7450, 98.9450},
			}},
			{code: "5016", name: "อำเภอหางดง", lat: 18.6870, lng: 98.9200, subdistrict: []place{
				{"501601", "ตำบลหางดง", 18.6870, 98.9210},
				{"501602", "ตำบลหนองแก๋ว", 18.6680, 98.9000},
				{"501605", "ตำบลบ้านแหวน", 18.7180, 98.9350},
				{"501608", "ตำบลสบแม่ข่า", 18.7000, 98.9450},
			}},
			{code: "5015", name: "อำเภอสันทราย", lat: 18.8480, lng: 99.0380, subdistrict: []place{
				{"501501", "ตำบลสันทรายหลวง", 18.8480, 99.0400},
				{"501506", "ตำบลหนองหาร", 18.9000, 99.0100},
				{"501509", "ตำบลแม่แฝก", 19.0100, 98.9800},
			}},
			{code: "5019", name: "อำเภอสารภี", lat: 18.7070, lng: 99.0370, subdistrict: []place{
				{"501901", "ตำบลยางเนิ้ง", 18.7070, 99.0370},
				{"501905", "ตำบลท่ากว้าง", 18.6700, 99.0550},
				{"501907", "ตำบลชมภู", 18.6900, 99.0150},
			}},
		},
		shared: sharedEdge{subdistrict: "500109", alsoUnder: "5016"},
	},
	{
		code: "40", name: "จังหวัดขอนแก่น", english: "Khon Kaen", postcode: "40000",
		districts: []district{
			{code: "4001", name: "อำเภอเมืองขอนแก่น", lat: 16.4322, lng: 102.8236, subdistrict: []place{
				{"400101", "ตำบลในเมือง", 16.4300, 102.8350},
				{"400102", "ตำบลสำราญ", 16.5050, 102.8800},
				{"400104", "ตำบลพระลับ", 16.3900, 102.8500},
				{"400110", "ตำบลศิลา", 16.4800, 102.8200},
				{"400111", "ตำบลบ้านเป็ด", 16.4250, 102.7800},
			}},
			{code: "4002", name: "อำเภอบ้านฝาง", lat: 16.4590, lng: 102.6380, subdistrict: []place{
				{"400201", "ตำบลบ้านฝาง", 16.4590, 102.6380},
				{"400203", "ตำบลป่ามะนาว", 16.4300, 102.7000},
				{"400204", "ตำบลบ้านเหล่า", 16.5000, 102.6000},
			}},
			{code: "4010", name: "อำเภอน้ำพอง", lat: 16.7000, lng: 102.8600, subdistrict: []place{
				{"401001", "ตำบลพังทุย", 16.6600, 102.9100},
				{"401002", "ตำบลน้ำพอง", 16.7000, 102.8600},
				{"401003", "ตำบลวังชัย", 16.6800, 102.8000},
			}},
			{code: "4005", name: "อำเภอชุมแพ", lat: 16.5440, lng: 102.1000, subdistrict: []place{
				{"400501", "ตำบลชุมแพ", 16.5440, 102.1000},
				{"400502", "ตำบลโนนหัน", 16.6000, 102.0500},
				{"400504", "ตำบลหนองไผ่", 16.5000, 102.1600},
			}},
		},
		shared: sharedEdge{subdistrict: "400111", alsoUnder: "4002"},
	},
}

// person is a Thai name with the romanisation used to build a username.
type person struct {
	first, last, firstLatin, lastLatin string
}

var firstNames = []struct{ thai, latin string }{
	{"สมศักดิ์", "somsak"}, {"สมศรี", "somsri"}, {"บุญมี", "boonmee"}, {"ประเสริฐ", "prasert"},
	{"วิไลวรรณ", "wilaiwan"}, {"สุนทร", "sunthorn"}, {"อำนวย", "amnuay"}, {"จันทร์เพ็ญ", "janpen"},
	{"ณัฐพล", "nattapon"}, {"กนกวรรณ", "kanokwan"}, {"ธนพร", "thanaporn"}, {"พิมพ์ใจ", "pimjai"},
	{"วีระพงษ์", "weerapong"}, {"สุภาพร", "supaporn"}, {"อนุชา", "anucha"}, {"มาลี", "malee"},
	{"ชัยวัฒน์", "chaiwat"}, {"รัตนา", "rattana"}, {"ศักดิ์ชัย", "sakchai"}, {"นงลักษณ์", "nongluck"},
	{"ทองใบ", "thongbai"}, {"คำปัน", "khampan"}, {"แสงเดือน", "saengduan"}, {"บุญส่ง", "boonsong"},
}

var lastNames = []struct{ thai, latin string }{
	{"แสงทอง", "saengthong"}, {"ศรีสุข", "srisuk"}, {"บุญเรือง", "boonruang"}, {"วงศ์ไทย", "wongthai"},
	{"คำแก้ว", "khamkaew"}, {"อินทร์แก้ว", "inkaew"}, {"ทองดี", "thongdee"}, {"สุขเจริญ", "sukcharoen"},
	{"พรหมมา", "prommma"}, {"ปัญญาวงศ์", "panyawong"}, {"จันทร์หอม", "janhom"}, {"ไชยวงศ์", "chaiwong"},
	{"ยอดคำ", "yodkham"}, {"ธรรมวงศ์", "thammawong"}, {"มณีรัตน์", "maneerat"}, {"ใจมั่น", "jaiman"},
}
