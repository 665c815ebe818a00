// Tomcat upstream for tests/differential: mapped twice in web.xml (/admin/* as "admin",
// / as "public"), so the resource is the servlet Tomcat's own mapper chose after its
// decoding, `;parameter` stripping and dot-segment normalisation, or an application check that
// ignores case; the vhost from getServerName.
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

public class Probe extends HttpServlet {
    private static String quote(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e) out.append(String.format("\\u%04x", (int) c));
            else out.append(c);
        }
        return out.append('"').toString();
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String resource = getInitParameter("resource");
        String server = req.getServerName() == null ? "" : req.getServerName().toLowerCase();
        if ("admin".equals(System.getProperty("probe.site")) || server.startsWith("admin.")) resource = "admin-host";
        String path = req.getServletPath() + (req.getPathInfo() == null ? "" : req.getPathInfo());
        // An application check that ignores case, as Spring's case-insensitive matchers do
        // (String.regionMatches(true, ...): dotless ı and dotted İ equal i there).
        if ("public".equals(resource) && path.regionMatches(true, 0, "/admin", 0, 6)
                && (path.length() == 6 || path.charAt(6) == '/')) resource = "admin";
        StringBuilder read = new StringBuilder("{");
        String names = System.getProperty("probe.read", "");
        for (String name : names.split(",")) {
            String value = req.getHeader(name);
            if (value == null) continue;
            if (read.length() > 1) read.append(',');
            read.append(quote(name)).append(':').append(quote(value));
        }
        if (req.getRemoteUser() != null) {
            if (read.length() > 1) read.append(',');
            read.append("\"REMOTE_USER\":").append(quote(req.getRemoteUser()));
        }
        read.append('}');
        String host = req.getHeader("Host") == null ? "" : req.getHeader("Host");
        resp.setContentType("application/json");
        resp.getWriter().write("{\"server\":\"tomcat\",\"resource\":" + quote(resource)
            + ",\"path\":" + quote(path) + ",\"method\":" + quote(req.getMethod())
            + ",\"host\":" + quote(host) + ",\"read\":" + read + "}");
    }
}
