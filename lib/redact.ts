/** The URL with its password replaced, for logs, metrics and snapshots. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
  }
}

/** Replaces any credentials of a URL found inside a free-form text (error messages). */
export function redactText(text: string): string {
  return (
    text
      .replace(/(\w+:\/\/[^:/@\s]*):[^@\s]*@/g, "$1:***@")
      // user:password@ in a URL too malformed for the rule above ("amqp//u:p@h", "u:p@h").
      .replace(/((?:^|[\s"'(=,])(?:[\w+.-]*:?\/\/)?[^\s"'(=,:@/]+):(?!\*\*\*@)[^\s"'@/]+@/g, "$1:***@")
  );
}
