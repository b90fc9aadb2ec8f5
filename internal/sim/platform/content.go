package platform

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// Data element content is not stored: it is rendered on demand from the instance and element
// metadata, deterministically, so the size and MD5 recorded at seeding stay true.

// renderContent returns the bytes of a seeded data element.
func renderContent(inst *instance, el *dataElement) ([]byte, error) {
	switch {
	case el.ContentType == "application/xml":
		return formXML(inst), nil
	case el.ContentType == "application/pdf" && el.DataType == "ref-data-as-pdf":
		return receiptPDF(inst, el), nil
	case el.ContentType == "application/pdf":
		return attachmentPDF(inst, el), nil
	}
	return nil, fmt.Errorf("no content for data type %s", el.DataType)
}

// pick chooses deterministically from list by a hash of key.
func pick(key string, list []string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return list[h.Sum64()%uint64(len(list))]
}

func hashNum(key string, mod uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64() % mod
}

var (
	orgNames    = []string{"Fjordkraft Test AS", "Bergen Bakeri AS", "Nordlys Regnskap AS", "Tromsø Havn KF", "Solbakken Gård", "Grønn Energi Norge AS", "Vestland Transport AS", "Lillehammer Sport AS"}
	personNames = []string{"Kari Nordmann", "Ola Nordmann", "Ingrid Hansen", "Per Johansen", "Sofie Larsen", "Lars Olsen", "Emma Berg", "Jonas Haugen"}
	purposes    = []string{"Tilskudd til energieffektivisering", "Rapportering av årsverk", "Søknad om dispensasjon", "Melding om endring", "Refusjon av utlegg", "Kvartalsrapport"}
)

// ownerName gives a believable name for the instance owner.
func ownerName(inst *instance) string {
	if inst.InstanceOwner.OrganisationNumber != "" {
		return pick(inst.InstanceOwner.OrganisationNumber, orgNames)
	}
	return pick(inst.InstanceOwner.PersonNumber, personNames)
}

// reference is the 12-character A3 reference people see: the end of the instance GUID.
func reference(inst *instance) string {
	if len(inst.ID) < 12 {
		return inst.ID
	}
	return inst.ID[len(inst.ID)-12:]
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// formXML renders the app's form data.
func formXML(inst *instance) []byte {
	key := inst.ID
	created, _ := time.Parse(time.RFC3339Nano, inst.Created)
	from := time.Date(created.Year(), created.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -3, 0)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<Skjema xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">` + "\n")
	b.WriteString("  <Innsender>\n")
	if n := inst.InstanceOwner.OrganisationNumber; n != "" {
		b.WriteString("    <Organisasjonsnummer>" + n + "</Organisasjonsnummer>\n")
	} else {
		b.WriteString("    <Fodselsnummer>" + inst.InstanceOwner.PersonNumber + "</Fodselsnummer>\n")
	}
	b.WriteString("    <Navn>" + xmlText(ownerName(inst)) + "</Navn>\n")
	b.WriteString("    <Epost>post@example.no</Epost>\n")
	b.WriteString("  </Innsender>\n")
	b.WriteString("  <Innhold>\n")
	b.WriteString("    <Tema>" + xmlText(pick(key+"tema", purposes)) + "</Tema>\n")
	fmt.Fprintf(&b, "    <Belop>%d</Belop>\n", 1000+hashNum(key+"belop", 250000))
	fmt.Fprintf(&b, "    <AntallArsverk>%d.%d</AntallArsverk>\n", 1+hashNum(key+"aarsverk", 40), hashNum(key+"des", 10))
	b.WriteString("    <PeriodeFra>" + from.Format("2006-01-02") + "</PeriodeFra>\n")
	b.WriteString("    <PeriodeTil>" + from.AddDate(0, 3, -1).Format("2006-01-02") + "</PeriodeTil>\n")
	b.WriteString("    <Bekreftet>true</Bekreftet>\n")
	b.WriteString("  </Innhold>\n")
	b.WriteString("</Skjema>\n")
	return []byte(b.String())
}

// receiptPDF renders the receipt Altinn apps generate when the process ends.
func receiptPDF(inst *instance, el *dataElement) []byte {
	ended := inst.LastChanged
	if inst.Process != nil && inst.Process.Ended != "" {
		ended = inst.Process.Ended
	}
	t, _ := time.Parse(time.RFC3339Nano, ended)
	owner := inst.InstanceOwner.OrganisationNumber
	if owner == "" {
		owner = inst.InstanceOwner.PersonNumber
	}
	title := strings.TrimSuffix(el.Filename, ".pdf")
	return renderPDF(title, t, []string{
		"Kvittering for innsendt skjema",
		"",
		"Tjeneste: " + title + " (" + inst.AppID + ")",
		"Avsender: " + ownerName(inst) + " (" + owner + ")",
		"Mottaker: " + strings.ToUpper(inst.Org),
		"Referansenummer: " + reference(inst),
		"Innsendt: " + t.Format("02.01.2006 15:04") + " UTC",
		"",
		"Dette er en kvittering for at skjemaet er sendt inn.",
		"Dokumentet er laget i en simulert Altinn-plattform.",
	})
}

// attachmentPDF renders an attachment the instance owner uploaded.
func attachmentPDF(inst *instance, el *dataElement) []byte {
	t, _ := time.Parse(time.RFC3339Nano, el.Created)
	return renderPDF(el.Filename, t, []string{
		strings.TrimSuffix(el.Filename, ".pdf"),
		"",
		"Vedlegg til " + inst.AppID + ", referanse " + reference(inst),
		"Lastet opp av " + ownerName(inst),
		fmt.Sprintf("Sum: %d kr", 500+hashNum(el.ID, 90000)),
	})
}

// renderPDF writes a one-page PDF 1.4 with Helvetica text and a correct cross-reference table.
func renderPDF(title string, created time.Time, lines []string) []byte {
	var content bytes.Buffer
	content.WriteString("BT\n/F1 16 Tf\n56 780 Td\n")
	for i, l := range lines {
		if i == 1 {
			content.WriteString("/F1 11 Tf\n")
		}
		if i > 0 {
			content.WriteString("0 -18 Td\n")
		}
		content.WriteString("(" + pdfString(l) + ") Tj\n")
	}
	content.WriteString("ET\n")

	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
		fmt.Sprintf("<< /Title (%s) /Producer (Altinn PDF) /CreationDate (D:%sZ) >>", pdfString(title), created.UTC().Format("20060102150405")),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// pdfString encodes text as a PDF literal string in WinAnsi (Latin-1 covers æøå), escaping
// the delimiters.
func pdfString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteByte(' ')
		case r < 0x80:
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, "\\%03o", r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
