printf '%.2f %f %.0f\n' 3.14159 2.5 2.5
printf '%e\n' 12345.678
printf '%g %g\n' 0.0001 100000
