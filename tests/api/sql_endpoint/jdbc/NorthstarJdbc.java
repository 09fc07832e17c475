import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;

/**
 * Connects to the northstar SQL endpoint with the PostgreSQL JDBC driver, as BI tools do, and
 * prints what DatabaseMetaData and a query return as tab-separated lines for the test to check.
 * Usage: java -cp postgresql.jar:. NorthstarJdbc jdbc:postgresql://host:port/northstar "SELECT ..." [param]
 */
public class NorthstarJdbc {
    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0], "analyst", "any")) {
            DatabaseMetaData meta = conn.getMetaData();
            System.out.println("product\t" + meta.getDatabaseProductName() + "\t" + meta.getDatabaseProductVersion());
            try (ResultSet rs = meta.getSchemas()) {
                while (rs.next()) {
                    System.out.println("schema\t" + rs.getString("TABLE_SCHEM"));
                }
            }
            try (ResultSet rs = meta.getTables(null, "semantic", "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    System.out.println("table\t" + rs.getString("TABLE_SCHEM") + "\t" + rs.getString("TABLE_NAME")
                            + "\t" + rs.getString("TABLE_TYPE"));
                }
            }
            try (ResultSet rs = meta.getColumns(null, "semantic", "metrics", "%")) {
                while (rs.next()) {
                    System.out.println("column\t" + rs.getString("COLUMN_NAME") + "\t" + rs.getString("TYPE_NAME")
                            + "\t" + String.valueOf(rs.getString("REMARKS")).replaceAll("\\s+", " "));
                }
            }
            try (PreparedStatement st = conn.prepareStatement(args[1])) {
                if (args.length > 2) {
                    st.setString(1, args[2]);
                }
                try (ResultSet rs = st.executeQuery()) {
                    ResultSetMetaData cols = rs.getMetaData();
                    while (rs.next()) {
                        StringBuilder line = new StringBuilder("row");
                        for (int i = 1; i <= cols.getColumnCount(); i++) {
                            line.append('\t').append(rs.getString(i));
                        }
                        System.out.println(line);
                    }
                }
            }
        }
    }
}
