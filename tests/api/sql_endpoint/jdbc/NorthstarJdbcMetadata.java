import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;

/**
 * pgjdbc's DatabaseMetaData, call by call, as DBeaver, DataGrip and JDBC-based BI tools read a
 * database. Prints, per call, its result set's column labels and type names, then its rows:
 *   CALL  columns  label:type ...
 *   CALL  row      value ...
 * Usage: java NorthstarJdbcMetadata URL USER PASSWORD SCHEMA TABLE
 */
public class NorthstarJdbcMetadata {
    public static void main(String[] args) throws Exception {
        String schema = args[3];
        String table = args[4];
        try (Connection connection = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData meta = connection.getMetaData();
            dump("getTypeInfo", meta.getTypeInfo());
            dump("getTables", meta.getTables(null, schema, table, null));
            dump("getColumns", meta.getColumns(null, schema, table, null));
            dump("getPrimaryKeys", meta.getPrimaryKeys(null, schema, table));
            dump("getIndexInfo", meta.getIndexInfo(null, schema, table, false, true));
            dump("getFunctions", meta.getFunctions(null, schema, null));
            dump("getSchemas", meta.getSchemas());
            dump("getCatalogs", meta.getCatalogs());
            dump("getTableTypes", meta.getTableTypes());
            dump("getImportedKeys", meta.getImportedKeys(null, schema, table));
        }
    }

    private static void dump(String call, ResultSet rows) throws SQLException {
        try (ResultSet rs = rows) {
            ResultSetMetaData shape = rs.getMetaData();
            StringBuilder line = new StringBuilder(call).append("\tcolumns");
            for (int i = 1; i <= shape.getColumnCount(); i++) {
                line.append('\t').append(shape.getColumnLabel(i)).append(':').append(shape.getColumnTypeName(i));
            }
            System.out.println(line);
            while (rs.next()) {
                line = new StringBuilder(call).append("\trow");
                for (int i = 1; i <= shape.getColumnCount(); i++) {
                    String value = rs.getString(i);
                    line.append('\t').append(value == null ? "null" : value.replaceAll("[\\t\\r\\n]", " "));
                }
                System.out.println(line);
            }
        }
    }
}
